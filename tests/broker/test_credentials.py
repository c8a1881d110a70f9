"""The password file, and a running Mosquitto picking up its changes on SIGHUP."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiomqtt
import pytest

from broker.credentials import BrokerReloadError, PasswordFile, reload_broker
from core.passwords import mosquitto_hash, verify_mosquitto_hash
from core.protocol import topics
from tests.broker.conftest import (
    PASSWORD,
    TIMEOUT,
    LocalBroker,
    can_connect,
    client,
    eventually,
    needs_mosquitto,
)


def test_users_are_added_replaced_and_removed(tmp_path: Path) -> None:
    passwords = PasswordFile(tmp_path / "passwd")
    assert passwords.usernames() == []
    passwords.set("press-07", mosquitto_hash("first"))
    passwords.set("server", mosquitto_hash("other"))
    passwords.set("press-07", mosquitto_hash("second"))
    assert passwords.usernames() == ["press-07", "server"]
    assert verify_mosquitto_hash("second", passwords.read()["press-07"])
    assert passwords.remove("press-07") is True
    assert passwords.remove("press-07") is False
    assert passwords.usernames() == ["server"]


def test_a_new_file_is_private_and_an_existing_mode_is_kept(tmp_path: Path) -> None:
    passwords = PasswordFile(tmp_path / "passwd")
    passwords.set("a", mosquitto_hash("x"))
    assert passwords.path.stat().st_mode & 0o777 == 0o600
    passwords.path.chmod(0o640)  # say, readable by the broker's group
    passwords.set("b", mosquitto_hash("x"))
    assert passwords.path.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == [".passwd.lock", "passwd"]


@pytest.mark.parametrize("username", ["", "a:b", "a\nb", "a b", "dev/+", "#", "x" * 65])
def test_usernames_that_break_the_file_or_the_acl_are_refused(
    tmp_path: Path, username: str
) -> None:
    with pytest.raises(ValueError, match="broker username"):
        PasswordFile(tmp_path / "passwd").set(username, mosquitto_hash("x"))


@pytest.mark.parametrize("password_hash", ["plain-password", "$6$abc$def", "$7$101$salt", ""])
def test_only_mosquitto_hashes_are_stored(tmp_path: Path, password_hash: str) -> None:
    with pytest.raises(ValueError, match=r"\$7\$ hash"):
        PasswordFile(tmp_path / "passwd").set("dev-a", password_hash)
    assert not (tmp_path / "passwd").exists()


def test_reload_without_a_pid_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(BrokerReloadError, match="no broker pid file"):
        reload_broker(tmp_path / "mosquitto.pid")


def test_reload_with_garbage_in_the_pid_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "mosquitto.pid").write_text("not a pid\n")
    with pytest.raises(BrokerReloadError, match="does not hold a process id"):
        reload_broker(tmp_path / "mosquitto.pid")


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A process that is not Mosquitto (and that SIGHUP would end)."""
    process = subprocess.Popen(["sleep", "30"])
    try:
        yield process
    finally:
        process.kill()
        process.wait(TIMEOUT)


def test_a_recycled_pid_is_not_signalled(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    (tmp_path / "mosquitto.pid").write_text(f"{bystander.pid}\n")
    with pytest.raises(BrokerReloadError, match="stale pid file"):
        reload_broker(tmp_path / "mosquitto.pid")
    assert bystander.poll() is None  # still alive


@needs_mosquitto
async def test_a_user_added_and_reloaded_can_connect(local_broker: LocalBroker) -> None:
    assert not await can_connect(local_broker.port, "press-07")
    local_broker.credentials.upsert("press-07", mosquitto_hash(PASSWORD))
    await eventually(lambda: can_connect(local_broker.port, "press-07"))


@needs_mosquitto
async def test_a_removed_user_is_refused_and_disconnected(local_broker: LocalBroker) -> None:
    async with client(local_broker.port, "dev-a") as connected:
        assert local_broker.credentials.delete("dev-a") is True

        async def refused() -> bool:
            return not await can_connect(local_broker.port, "dev-a")

        await eventually(refused)
        # Mosquitto re-checks open connections on reload: this one is dropped too.
        with pytest.raises(aiomqtt.MqttError):
            async with asyncio.timeout(TIMEOUT):
                async for _ in connected.messages:
                    pass
    with pytest.raises(aiomqtt.MqttCodeError, match="Not authorized"):
        async with client(local_broker.port, "dev-a"):
            pass


@needs_mosquitto
async def test_a_rotated_password_replaces_the_old_one(local_broker: LocalBroker) -> None:
    async with client(local_broker.port, "server") as server:
        local_broker.credentials.upsert("dev-b", mosquitto_hash("rotated-secret"))
        await eventually(lambda: can_connect(local_broker.port, "dev-b", "rotated-secret"))
        assert not await can_connect(local_broker.port, "dev-b", PASSWORD)
        # The reload leaves every other connection alone.
        await server.publish(topics.SERVER_STATUS, b"still here", qos=1)
