"""amqtt in-process, for the zero-install demo: Mosquitto's password file and ACL rules.

amqtt's own FileAuthPlugin reads argon2/bcrypt hashes only, so ``PasswordFileAuth``
checks the ``$7$`` hashes of the Mosquitto password file instead; it re-reads the file
whenever it changes, so new users need no reload signal. ``DeviceTopicAcl`` applies the
same rules as ``render_acl``. amqtt has no MQTT 5 and no ``$share``: never for production.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from amqtt.broker import Broker
from amqtt.contexts import Action, BaseContext
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from broker.config import DEFAULT_SERVER_USERNAME
from broker.credentials import PasswordFile
from core.passwords import verify_mosquitto_hash
from core.protocol import topics

log = logging.getLogger(__name__)
SHUTDOWN_TIMEOUT_S = 10.0  # amqtt waits on its clients' sessions; never forever


class PasswordFileAuth(BaseAuthPlugin):
    """Authenticates against a Mosquitto password file (``$7$`` hashes)."""

    @dataclass
    class Config:
        """Where the password file is."""

        password_file: str = ""

    def __init__(self, context: BaseContext) -> None:
        super().__init__(context)
        self._file = PasswordFile(Path(self._get_config_option("password_file", "")))
        self._seen: tuple[int, int, int] | None = None
        self._users: dict[str, str] = {}

    def _current_users(self) -> dict[str, str]:
        try:
            info = os.stat(self._file.path)
        except FileNotFoundError:
            return {}
        # Replaced atomically, so a new inode, size or mtime means new contents.
        seen = (info.st_ino, info.st_size, info.st_mtime_ns)
        if seen != self._seen:
            self._users, self._seen = self._file.read(), seen
        return self._users

    async def authenticate(self, *, session: Session) -> bool | None:
        """Whether the session's username and password match the file."""
        if not session.username or session.password is None:
            return False
        users = await asyncio.to_thread(self._current_users)
        password_hash = users.get(session.username)
        return password_hash is not None and verify_mosquitto_hash(session.password, password_hash)


class DeviceTopicAcl(BaseTopicPlugin):
    """Each device reads and writes under its own topics; the server everything."""

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
        if topics.is_own_topic(topic, username):
            return True
        return action == Action.RECEIVE and topic == topics.SERVER_STATUS


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
    broker = Broker(amqtt_config(host, port, password_file, server_username))
    await broker.start()
    try:
        yield broker
    finally:
        try:
            async with asyncio.timeout(SHUTDOWN_TIMEOUT_S):
                await broker.shutdown()
        except TimeoutError:  # its clients are cut off anyway when the process ends
            log.warning("amqtt did not shut down within %s s; left as it was", SHUTDOWN_TIMEOUT_S)
