"""The shell the compose services run, run here: the init job twice, then the broker's keeper.

Nothing here runs containers, so each script is taken from ``docker-compose config`` as
the container would get it and run with the volumes' paths moved under a directory of the
test's own: the init job against SQLite, the broker's keeper with the Mosquitto installed
here (as root, as in its image, so it hands the files to the mosquitto user). What it shows:
a second init keeps every key, certificate and password; Mosquitto starts on what init
made, its healthcheck passes, and a device the server writes into the shared password
file can connect within seconds, with no signal from the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.services.audit_checkpoints import keyed_database
from core.settings import Settings
from tests.deploy.compose_file import compose_config, example_env, parsed, unescaped
from webui.backbone.accounts import BrokerAccounts

STATIONS = 3
SECRET_KEY = "a-test-secret-key-of-more-than-32-characters"
INIT_TIMEOUT = 120  # seconds; one init run takes ~10 s here (eight cold starts of the CLI)
RELOAD_WITHIN = 10.0  # seconds; the keeper polls every 2 s
# What a second init must leave byte for byte as the first made it.
KEPT = (
    "app/pki/ca.crt",
    "app/pki/ca.key",
    "app/broker/certs/server.key",
    "app/data/server-signing-key.pem",
    "app/data/audit-key",
    "app/trust/server-signing-key.pub.pem",
    "app/fleet/credentials.json",
)


@dataclass(frozen=True)
class Stack:
    """compose.yaml as resolved, and a directory standing for the containers' file systems."""

    config: dict[str, Any]
    root: Path

    def script(self, service: str) -> str:
        """The service's shell script, its absolute paths moved under ``root``."""
        text = unescaped(self.config["services"][service]["entrypoint"][-1])
        for top in ("/app/", "/pp/", "/mosquitto/"):
            text = text.replace(top, f"{self.root}{top}")
        return text

    def init_env(self, **changes: str) -> dict[str, str]:
        """The init job's environment, on SQLite and the test's paths."""
        env = {k: str(v) for k, v in self.config["services"]["init"]["environment"].items()}
        env = {k: v.replace("/app/", f"{self.root}/app/") for k, v in env.items()}
        env.update(
            PP_DATABASE_URL=f"sqlite:///{self.root / 'pp.db'}",
            PP_SECRET_KEY=SECRET_KEY,
            PP_STATIONS=str(STATIONS),
            PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        )
        env.update(changes)
        return env

    def run_init(self, **changes: str) -> subprocess.CompletedProcess[str]:
        """The init job's script, as its container runs it."""
        return subprocess.run(
            ["/bin/sh", "-euc", self.script("init")],
            env=self.init_env(**changes),
            cwd=self.root / "app",
            capture_output=True,
            text=True,
            timeout=INIT_TIMEOUT,
        )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    done = compose_config(example_env(), tmp_path_factory.mktemp("compose"))
    assert done.returncode == 0, done.stderr
    # Not under pytest's 0700 temporary directory: Mosquitto, once it drops root, must
    # reach the files, as it reaches /mosquitto/config in its image.
    root = Path(tempfile.mkdtemp(prefix="pp-compose-"))
    root.chmod(0o755)
    for mount in ("data", "pki", "broker", "accounts", "trust", "fleet"):
        (root / "app" / mount).mkdir(parents=True)  # the image's mount points
    try:
        yield Stack(parsed(done.stdout), root)
    finally:
        shutil.rmtree(root)


@pytest.fixture(scope="module")
def first_init(stack: Stack) -> dict[str, bytes]:
    """The init job run once on an empty stack; the files it made, by path."""
    done = stack.run_init()
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"registered {', '.join(f'sim-{n:03d}' for n in range(1, 4))}" in done.stdout
    return {path: (stack.root / path).read_bytes() for path in KEPT}


def test_init_refuses_the_placeholder_secret_key(stack: Stack) -> None:
    """.env.example's PP_SECRET_KEY is too short on purpose: nothing starts with it."""
    done = stack.run_init(PP_SECRET_KEY=example_env()["PP_SECRET_KEY"])
    assert done.returncode != 0
    assert "PP_SECRET_KEY must be set" in done.stderr
    assert not (stack.root / "app" / "pki" / "ca.crt").exists()


def test_init_again_keeps_every_key_and_account(stack: Stack, first_init: dict[str, bytes]) -> None:
    """A second `docker compose up` finds everything in place and changes none of it."""
    done = stack.run_init()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "registered none; new passwords for none" in done.stdout
    assert "users exist already" in done.stdout
    again = {path: (stack.root / path).read_bytes() for path in KEPT}
    assert again == first_init
    assert stat_mode(stack.root / "app/pki/ca.key") == 0o600
    assert stat_mode(stack.root / "app/fleet/credentials.json") == 0o600
    passwd = (stack.root / "app/accounts/passwd").read_text()
    assert passwd.startswith("server:$7$")


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _mosquitto_pub(port: int, cafile: Path, username: str, password: str) -> int:
    return subprocess.run(
        [
            "mosquitto_pub",
            "-h",
            "localhost",
            "-p",
            str(port),
            "--cafile",
            str(cafile),
            "-u",
            username,
            "-P",
            password,
            "-t",
            f"pp/v1/dev/{username}/heartbeat",
            "-m",
            "{}",
        ],
        capture_output=True,
        timeout=10,
    ).returncode


def _mosquitto_of(pid: int) -> int:
    """The Mosquitto the keeper ``pid`` started (its other child is a passing ``sleep``)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    (broker,) = [int(c) for c in children if Path(f"/proc/{c}/comm").read_text() == "mosquitto\n"]
    return broker


def _broker_ready() -> str | None:
    """Why the keeper cannot run here, or None."""
    if os.geteuid() != 0:
        return "the keeper hands files to the mosquitto user: it runs as root, as in its image"
    try:
        pwd.getpwnam("mosquitto")
    except KeyError:
        return "no mosquitto user (Debian's mosquitto package makes it)"
    if not shutil.which("mosquitto") or not shutil.which("mosquitto_pub"):
        return "mosquitto and mosquitto-clients are not installed (see .ci/run)"
    return None


def test_the_broker_keeper_serves_tls_and_reloads_what_the_server_writes(
    stack: Stack, first_init: dict[str, bytes]
) -> None:
    """Mosquitto starts on init's files; a device the server adds connects within seconds."""
    why = _broker_ready()
    if why:
        pytest.skip(why)
    port = _free_port()
    # The rendered config as the container reads it: its paths under root, and, since the
    # test shares this machine, a free port on loopback in place of 8883 on every address.
    conf = stack.root / "app/broker/mosquitto.conf"
    text = conf.read_text().replace("/mosquitto/", f"{stack.root}/mosquitto/")
    conf.write_text(text.replace("listener 8883 0.0.0.0", f"listener {port} 127.0.0.1"))
    for directory in ("mosquitto/config", "mosquitto/data", "pp"):
        (stack.root / directory).mkdir(parents=True, exist_ok=True)
    for volume in ("broker", "accounts"):  # the volumes the mosquitto service mounts
        (stack.root / "pp" / volume).symlink_to(stack.root / "app" / volume)
    cafile = stack.root / "mosquitto/config/certs/ca.crt"
    check = unescaped(stack.config["services"]["mosquitto"]["healthcheck"]["test"][-1])
    check = check.replace("-p 8883", f"-p {port}").replace(
        "/mosquitto/", f"{stack.root}/mosquitto/"
    )

    keeper = subprocess.Popen(
        ["/bin/sh", "-euc", stack.script("mosquitto")],
        env={"PATH": f"{os.environ['PATH']}:/usr/sbin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 15
        while subprocess.run(["/bin/sh", "-c", check], check=False).returncode != 0:
            assert keeper.poll() is None, keeper.stdout.read() if keeper.stdout else ""
            assert time.monotonic() < deadline, "the healthcheck never passed"
            time.sleep(0.2)
        broker = _mosquitto_of(keeper.pid)
        key = stack.root / "mosquitto/config/certs/server.key"
        assert key.stat().st_uid == pwd.getpwnam("mosquitto").pw_uid
        assert stat_mode(key) == 0o600

        credentials = json.loads(first_init["app/fleet/credentials.json"])
        device, password = sorted(credentials.items())[0]
        assert _mosquitto_pub(port, cafile, device, password) != 0  # not in the file yet

        # What the server does at start: the password file made equal to the database.
        settings = Settings(
            database_url=f"sqlite:///{stack.root / 'pp.db'}",
            signing_key_file=stack.root / "app/data/server-signing-key.pem",
        )
        asyncio.run(_sync_accounts(settings, stack.root / "app/accounts/passwd"))
        written = time.monotonic()
        while _mosquitto_pub(port, cafile, device, password) != 0:
            assert time.monotonic() - written < RELOAD_WITHIN, "the broker never reloaded"
            time.sleep(0.2)
        print(f"reloaded {time.monotonic() - written:.1f} s after the server wrote the file")
        assert _mosquitto_pub(port, cafile, device, "not-its-password") != 0

        keeper.send_signal(signal.SIGTERM)  # docker stop
        keeper.wait(timeout=15)
        assert not Path(f"/proc/{broker}").exists(), "Mosquitto outlived its keeper"
        output = keeper.stdout.read() if keeper.stdout else ""
        assert "password file changed: Mosquitto reloads it" in output
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(keeper.pid, signal.SIGKILL)  # the group this test started, nothing else
        keeper.wait(timeout=15)
        if keeper.stdout:
            keeper.stdout.close()


async def _sync_accounts(settings: Settings, passwd: Path) -> None:
    database = keyed_database(settings)
    try:
        username = "server"
        password = example_env()["PP_MQTT_SERVER_PASSWORD"]
        await BrokerAccounts(database, passwd, server=(username, password)).sync()
    finally:
        await database.close()
