"""Run as root, the broker commands leave files Mosquitto can read once it drops to its user."""

from __future__ import annotations

import io
import os
import pwd
import shutil
import ssl
import stat
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker import config
from broker.mosquitto_process import MosquittoProcess, free_port
from broker.ownership import MOSQUITTO_USER, broker_owner
from core import cli
from core.protocol import topics
from tests.broker.conftest import PASSWORD, client, needs_mosquitto, received


def _mosquitto_user() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(MOSQUITTO_USER)
    except KeyError:
        return None


MOSQUITTO = _mosquitto_user()
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or MOSQUITTO is None, reason="needs root and a 'mosquitto' user"
)


def owned(path: Path) -> tuple[int, int, int]:
    """``(uid, gid, permission bits)`` of ``path``."""
    info = path.stat()
    return info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)


def passwd(
    file: Path, monkeypatch: pytest.MonkeyPatch, *flags: str, username: str = "dev-a"
) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{PASSWORD}\n"))
    argv = ["broker", "passwd", "--file", str(file), "--username", username, *flags]
    return cli.main(argv)


def test_as_root_the_default_owner_is_the_mosquitto_user() -> None:
    assert MOSQUITTO is not None
    owner = broker_owner()
    assert owner is not None and (owner.uid, owner.gid) == (MOSQUITTO.pw_uid, MOSQUITTO.pw_gid)


def test_passwd_hands_the_file_to_mosquitto(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert MOSQUITTO is not None
    assert passwd(tmp_path / "passwd", monkeypatch) == 0
    assert owned(tmp_path / "passwd") == (MOSQUITTO.pw_uid, MOSQUITTO.pw_gid, 0o600)
    # A second user keeps it so: the rewrite is atomic, its owner carried over.
    assert passwd(tmp_path / "passwd", monkeypatch) == 0
    assert owned(tmp_path / "passwd") == (MOSQUITTO.pw_uid, MOSQUITTO.pw_gid, 0o600)


def test_passwd_takes_another_owner_and_refuses_an_unknown_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert passwd(tmp_path / "root", monkeypatch, "--owner", "root:root") == 0
    assert owned(tmp_path / "root") == (0, 0, 0o600)

    assert passwd(tmp_path / "nobody", monkeypatch, "--owner", "no-such-user") == 1
    assert capsys.readouterr().err.startswith("error: no such user 'no-such-user'")
    assert not (tmp_path / "nobody").exists()


def test_certs_give_the_broker_its_key_and_keep_the_cas(tmp_path: Path) -> None:
    assert MOSQUITTO is not None
    assert cli.main(["broker", "certs", "--out", str(tmp_path), "--client", "dev-a"]) == 0
    assert owned(tmp_path / "server.key") == (MOSQUITTO.pw_uid, MOSQUITTO.pw_gid, 0o600)
    assert owned(tmp_path / "ca.key") == (0, 0, 0o600)
    assert owned(tmp_path / "dev-a.key") == (0, 0, 0o600)


def test_conf_gives_the_broker_its_acl(tmp_path: Path) -> None:
    assert MOSQUITTO is not None
    assert cli.main(["broker", "conf", "--out", str(tmp_path)]) == 0
    assert owned(tmp_path / config.ACL_FILE_NAME) == (MOSQUITTO.pw_uid, MOSQUITTO.pw_gid, 0o640)
    assert owned(tmp_path / config.CONF_FILE_NAME) == (0, 0, 0o644)


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A directory the mosquitto user can reach (pytest's own tmp_path is root's alone)."""
    directory = Path(tempfile.mkdtemp(prefix="pp-broker-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        shutil.rmtree(directory)


@needs_mosquitto
async def test_mosquitto_started_as_root_reads_what_the_commands_wrote(
    reachable: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deployment: root writes every file, Mosquitto drops to its user and serves TLS."""
    assert MOSQUITTO is not None
    certs, data = reachable / "certs", reachable / "data"
    data.mkdir()
    os.chown(data, MOSQUITTO.pw_uid, MOSQUITTO.pw_gid)  # persistence is the broker's to write
    port = free_port()
    argv = ["broker", "conf", "--out", str(reachable), "--config-dir", str(reachable)]
    argv += ["--data-dir", str(data), "--certs-dir", str(certs), "--port", str(port)]
    argv += ["--bind", "127.0.0.1"]
    assert cli.main(argv) == 0
    assert cli.main(["broker", "certs", "--out", str(certs)]) == 0
    for username in ("server", "dev-a"):
        assert passwd(reachable / config.PASSWORD_FILE_NAME, monkeypatch, username=username) == 0
    assert "\nuser " not in (reachable / config.CONF_FILE_NAME).read_text()  # drops to mosquitto

    broker = MosquittoProcess(reachable / config.CONF_FILE_NAME, port=port, tls=True)
    trust = ssl.create_default_context(cafile=certs / "ca.crt")
    async with (
        broker,
        client(port, "dev-a", tls_context=trust) as a,
        client(port, "server", tls_context=trust) as server,
    ):
        await a.subscribe(topics.cmd("dev-a"), qos=1)
        await server.publish(topics.cmd("dev-a"), b"over tls", qos=1)
        assert await received(a, 1) == [(topics.cmd("dev-a"), b"over tls")]
