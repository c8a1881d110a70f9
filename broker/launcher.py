"""An embedded broker on a free loopback port: Mosquitto when installed, else amqtt in-process.

The zero-install demo and the tests run it the same way::

    async with embedded_broker(workdir, users={"server": "secret"}) as broker:
        ...  # broker.host, broker.port, broker.kind; broker.credentials.upsert(...)
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from broker import config
from broker.amqtt_broker import running_amqtt
from broker.credentials import BrokerCredentials, PasswordFile
from broker.mosquitto_process import configure_mosquitto, free_port
from core.passwords import mosquitto_hash

BrokerKind = Literal["mosquitto", "amqtt"]
LOOPBACK = "127.0.0.1"  # the embedded broker is never reachable from another machine


@dataclass(frozen=True)
class EmbeddedBroker:
    """A running embedded broker: where it listens, what it is, and its users."""

    host: str
    port: int
    kind: BrokerKind
    credentials: BrokerCredentials

    @property
    def url(self) -> str:
        """``mqtt://host:port``, as Settings.mqtt_url takes it."""
        return f"mqtt://{self.host}:{self.port}"


def _write_users(workdir: Path, users: Mapping[str, str]) -> PasswordFile:
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    passwords = PasswordFile(workdir / config.PASSWORD_FILE_NAME)
    for username, password in users.items():
        passwords.set(username, mosquitto_hash(password))
    return passwords


def _mosquitto_available(prefer: BrokerKind) -> bool:
    return prefer == "mosquitto" and shutil.which("mosquitto") is not None


@asynccontextmanager
async def embedded_broker(
    workdir: Path,
    *,
    users: Mapping[str, str] | None = None,
    prefer: BrokerKind = "mosquitto",
    port: int | None = None,
    server_username: str = config.DEFAULT_SERVER_USERNAME,
) -> AsyncIterator[EmbeddedBroker]:
    """Run a broker with ``users`` (username → password) added to ``workdir``'s password file."""
    passwords = await asyncio.to_thread(_write_users, workdir, users or {})

    if _mosquitto_available(prefer):
        process = await asyncio.to_thread(
            configure_mosquitto,
            passwords.path.parent,
            port=port,
            host=LOOPBACK,
            server_usernames=(server_username,),
        )
        credentials = BrokerCredentials(passwords, pid_file=process.pid_file)
        async with process:
            yield EmbeddedBroker(LOOPBACK, process.port, "mosquitto", credentials)
        return

    port = port or free_port(LOOPBACK)
    async with running_amqtt(
        host=LOOPBACK,
        port=port,
        password_file=passwords.path,
        server_username=server_username,
    ):
        # amqtt re-reads the password file on change: nothing to signal.
        yield EmbeddedBroker(LOOPBACK, port, "amqtt", BrokerCredentials(passwords))
