"""amqtt in-process, for the zero-install demo: Mosquitto's password file and ACL rules.

amqtt's own FileAuthPlugin reads argon2/bcrypt hashes only, so ``PasswordFileAuth``
checks the ``$7$`` hashes of the Mosquitto password file instead; it re-reads the file
whenever it changes, so new users need no reload signal. ``DeviceTopicAcl`` applies the
same rules as ``render_acl``: a device publishes its device → server topics and receives its
server → device ones. Like Mosquitto's ``use_username_as_clientid``, ``BoundClientIdBroker``
names each client after its username (a plugin comes too late: amqtt drops or takes over the
session a CONNECT names before it asks the plugins), so no account can knock another's
session off. amqtt has no MQTT 5 and no ``$share``: never for production.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from amqtt.adapters import ReaderAdapter, StreamReaderAdapter, StreamWriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext
from amqtt.mqtt.connect import ConnectPacket
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from broker.config import DEFAULT_SERVER_USERNAME
from broker.credentials import PasswordFile
from core.passwords import verify_mosquitto_hash
from core.protocol import topics

log = logging.getLogger(__name__)
SHUTDOWN_TIMEOUT_S = 10.0  # amqtt waits on its clients' sessions; never forever


class _Accounts:
    """The password file's users, read again whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self._file = PasswordFile(path)
        self._seen: tuple[int, int, int] | None = None
        self._users: dict[str, str] = {}

    def _current(self) -> dict[str, str]:
        try:
            info = os.stat(self._file.path)
        except FileNotFoundError:
            return {}
        # Replaced atomically, so a new inode, size or mtime means new contents.
        seen = (info.st_ino, info.st_size, info.st_mtime_ns)
        if seen != self._seen:
            self._users, self._seen = self._file.read(), seen
        return self._users

    async def verify(self, username: str | None, password: str | None) -> bool:
        """Whether ``username`` is in the file with ``password``."""
        if not username or password is None:
            return False
        users = await asyncio.to_thread(self._current)
        password_hash = users.get(username)
        return password_hash is not None and verify_mosquitto_hash(password, password_hash)


class PasswordFileAuth(BaseAuthPlugin):
    """Authenticates against a Mosquitto password file (``$7$`` hashes)."""

    @dataclass
    class Config:
        """Where the password file is."""

        password_file: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._accounts = _Accounts(Path(self._get_config_option("password_file", "")))

    async def authenticate(self, *, session: Session) -> bool | None:
        """Whether the session's username and password match the file."""
        return await self._accounts.verify(session.username, session.password)


class _ClientIdFromUsername(ReaderAdapter):
    """A connection's reader whose CONNECT names the client after its verified username.

    A client whose credentials fail gets a fresh random id instead, so even its refused
    CONNECT (amqtt acts on the id before it authenticates) touches no one's session.
    """

    def __init__(self, reader: ReaderAdapter, accounts: _Accounts) -> None:
        self._reader = reader
        self._accounts = accounts
        self._connect: io.BytesIO | None = None

    async def read(self, n: int = -1) -> bytes:
        """The rewritten CONNECT first, then the connection's own bytes."""
        if self._connect is None:
            packet = await ConnectPacket.from_stream(self._reader)
            verified = await self._accounts.verify(packet.username, packet.password)
            packet.client_id = (
                packet.username
                if verified and packet.username
                else f"refused-{secrets.token_hex(8)}"
            )
            self._connect = io.BytesIO(packet.to_bytes())
        data = self._connect.read(n)
        if not data:
            return await self._reader.read(n)
        if 0 < len(data) < n:  # a read across the CONNECT's end: top it up
            data += await self._reader.read(n - len(data))
        return data

    def feed_eof(self) -> None:
        """Pass the end of the stream on."""
        self._reader.feed_eof()


class BoundClientIdBroker(Broker):
    """amqtt whose clients' ids are their usernames, as ``use_username_as_clientid`` does."""

    def __init__(self, config: dict[str, object], password_file: Path) -> None:
        super().__init__(config)
        self._accounts = _Accounts(password_file)

    async def stream_connected(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str
    ) -> None:
        """Serve a TCP connection through a reader that rewrites its CONNECT's client id."""
        bound = _ClientIdFromUsername(StreamReaderAdapter(reader), self._accounts)
        await self.external_connected(bound, StreamWriterAdapter(writer), listener_name)


class DeviceTopicAcl(BaseTopicPlugin):
    """Devices publish their device → server topics, receive their server → device ones."""

    @dataclass
    class Config:
        """Which username is the server's."""

        server_username: str = DEFAULT_SERVER_USERNAME

    async def topic_filtering(
        self,
        *,
        session: Session | None = None,
        topic: str | None = None,
        action: Action | None = None,
    ) -> bool | None:
        """Whether ``session`` may do ``action`` on ``topic``."""
        username = session.username if session else None
        if not username or not topic:
            return False
        if username == self._get_config_option("server_username", DEFAULT_SERVER_USERNAME):
            return True
        if action == Action.SUBSCRIBE:
            # Like Mosquitto's ACL file: subscriptions are granted, deliveries filtered.
            return True
        if action == Action.PUBLISH:
            return topics.device_may_publish(topic, username)
        return topics.device_may_receive(topic, username)


def amqtt_config(
    host: str, port: int, password_file: Path, server_username: str
) -> dict[str, object]:
    """amqtt's broker configuration: one TCP listener, our auth and ACL plugins only."""
    return {
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        # Listing plugins replaces amqtt's defaults, anonymous access and $SYS among them.
        "plugins": {
            f"{__name__}.PasswordFileAuth": {"password_file": str(password_file)},
            f"{__name__}.DeviceTopicAcl": {"server_username": server_username},
        },
    }


@asynccontextmanager
async def running_amqtt(
    *,
    host: str,
    port: int,
    password_file: Path,
    server_username: str = DEFAULT_SERVER_USERNAME,
) -> AsyncIterator[Broker]:
    """amqtt listening on ``host:port`` until the block exits."""
    broker = BoundClientIdBroker(
        amqtt_config(host, port, password_file, server_username), password_file
    )
    await broker.start()
    try:
        yield broker
    finally:
        try:
            async with asyncio.timeout(SHUTDOWN_TIMEOUT_S):
                await broker.shutdown()
        except TimeoutError:  # its clients are cut off anyway when the process ends
            log.warning("amqtt did not shut down within %s s; left as it was", SHUTDOWN_TIMEOUT_S)
