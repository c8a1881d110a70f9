"""Real brokers for the broker tests, and small MQTT helpers with bounded waits."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import pytest

from broker.credentials import BrokerCredentials, PasswordFile
from broker.mosquitto_process import MosquittoProcess, configure_mosquitto
from core.passwords import mosquitto_hash

TIMEOUT = 5.0  # seconds: every wait in these tests is bounded by this
QUIET = 0.3  # seconds of silence that count as "nothing more arrives"
PASSWORD = "pw-0123456789"
# Two server accounts: replicas each need their own, since a client's id is its username.
SERVERS = ("server", "server-2")
USERS = {**dict.fromkeys(SERVERS, PASSWORD), "dev-a": PASSWORD, "dev-b": PASSWORD}

needs_mosquitto = pytest.mark.skipif(
    shutil.which("mosquitto") is None, reason="needs the mosquitto binary"
)


@dataclass(frozen=True)
class LocalBroker:
    """A started Mosquitto with its credentials."""

    process: MosquittoProcess
    credentials: BrokerCredentials

    @property
    def port(self) -> int:
        """Its loopback port."""
        return self.process.port


def write_users(credentials: BrokerCredentials, users: Mapping[str, str]) -> None:
    """Add ``users`` (username → password) to the password file, without reloading."""
    for username, password in users.items():
        credentials.password_file.set(username, mosquitto_hash(password))


@pytest.fixture
async def local_broker(tmp_path: Path) -> AsyncIterator[LocalBroker]:
    """Mosquitto with the production ACL, the users in USERS, on a free loopback port."""
    process = configure_mosquitto(tmp_path / "broker", server_usernames=SERVERS)
    credentials = BrokerCredentials(
        PasswordFile(process.config_file.with_name("passwd")), process.pid_file
    )
    write_users(credentials, USERS)
    await process.start()
    try:
        yield LocalBroker(process, credentials)
    finally:
        await process.kill()


def client(
    port: int,
    username: str | None,
    password: str | None = PASSWORD,
    *,
    host: str = "127.0.0.1",
    tls_context: ssl.SSLContext | None = None,
) -> aiomqtt.Client:
    """An aiomqtt client with a unique id and bounded operations."""
    return aiomqtt.Client(
        host,
        port,
        username=username,
        password=password,
        identifier=f"{username}-{uuid.uuid4().hex[:8]}",
        tls_context=tls_context,
        timeout=TIMEOUT,
    )


async def received(mqtt: aiomqtt.Client, count: int) -> list[tuple[str, bytes]]:
    """Up to ``count`` messages; fewer if nothing arrives for QUIET seconds."""
    got: list[tuple[str, bytes]] = []
    while len(got) < count:
        try:
            message = await asyncio.wait_for(anext(mqtt.messages), QUIET if got else TIMEOUT)
        except TimeoutError:
            break
        assert isinstance(message.payload, bytes)
        got.append((str(message.topic), message.payload))
    return got


async def can_connect(port: int, username: str | None, password: str | None = PASSWORD) -> bool:
    """Whether the broker accepts these credentials (False on a refused CONNECT)."""
    try:
        async with client(port, username, password):
            return True
    except aiomqtt.MqttCodeError:
        return False


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait up to TIMEOUT until ``check`` holds; Mosquitto applies a SIGHUP a moment later."""
    async with asyncio.timeout(TIMEOUT):
        # Polling: a reload in another process signals nothing we could wait on.
        while not await check():  # noqa: ASYNC110
            await asyncio.sleep(0.05)
