"""A real Mosquitto per test, from the config in ``broker/``, with the test accounts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from broker import config
from broker.credentials import PasswordFile
from broker.mosquitto_process import MosquittoProcess, configure_mosquitto
from core.passwords import mosquitto_hash

SERVER = ("server", "server-secret-1")
# Devices the broker knows; tests register in the database the ones the server knows.
DEVICES = {
    "press-07": "press-secret-1",
    "lathe-1": "lathe-secret-1",
    "ghost": "ghost-secret-1",
    "retired": "retired-secret-1",
}
RunningBroker = MosquittoProcess


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    """Wait until ``check()`` holds, polling; fail the test after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 (what is checked has no event to wait on)
            await asyncio.sleep(0.01)


@pytest.fixture
async def mosquitto(tmp_path: Path) -> AsyncIterator[MosquittoProcess]:
    """Mosquitto with our ACL, password file and limits, on a free loopback port."""
    broker = configure_mosquitto(tmp_path / "broker")
    accounts = PasswordFile(broker.config_file.parent / config.PASSWORD_FILE_NAME)
    for username, password in {SERVER[0]: SERVER[1], **DEVICES}.items():
        accounts.set(username, mosquitto_hash(password))
    await broker.start()
    yield broker
    await broker.stop()
