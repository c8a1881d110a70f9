"""``precisionpulse demo`` as a newcomer runs it: one process, Ctrl-C, and again the next day."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiomqtt
import httpx
import pytest

from broker.mosquitto_process import free_port
from core.settings import Settings
from desktop.simulate_cli import _register

STATIONS = {"press-01", "lathe-02", "oven-03"}
WINDOW_STATION = "bench-04"  # registered for a station window, never simulated
START_S = 60.0  # a cold import of the UI stack on a loaded CI box takes most of this
STOP_S = 15.0
CREATED = re.compile(r"created the admin account: admin / (\S+)")


class Demo:
    """One ``precisionpulse demo`` process in its own session, as a terminal would run it."""

    def __init__(self, data_dir: Path, *args: str, **env: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"{data_dir.name}-{time.monotonic_ns()}.log"
        environ = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PP_") and k != "PYTEST_CURRENT_TEST"  # else NiceGUI's test mode
        }
        environ["PATH"] = f"{environ.get('PATH', '')}:/usr/sbin"  # Debian's mosquitto
        environ.update(env)
        self.broker_port = free_port()  # not 1883: demos of other tests may run beside
        command = [sys.executable, "-m", "core.cli", "demo", "--data-dir", str(data_dir)]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port), "--broker-port", str(self.broker_port), *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environ,
                start_new_session=True,  # so Ctrl-C can be sent to the group, as a terminal does
            )

    def output(self) -> str:
        """Everything printed so far."""
        return self.log.read_text()

    def wait_until_linked(self) -> None:
        """Until /api/v1/health answers with the broker link up."""
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                health = httpx.get(f"{self.url}/api/v1/health", timeout=1).json()
                if health["broker"]["state"] == "connected":
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail(f"no broker link in {START_S} s:\n{self.output()}")

    def stop(self, signum: signal.Signals, *, group: bool) -> int:
        """Send ``signum`` (to the whole process group: Ctrl-C) and wait for the exit code."""
        if group:
            os.killpg(self.process.pid, signum)
        else:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"still running {STOP_S} s after {signum.name}:\n{self.output()}")

    def kill(self) -> None:
        """Whatever happened, nothing outlives the test: Mosquitto runs in its own session."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        with contextlib.suppress(OSError, ValueError):  # no broker left, or none started
            broker = self.data_dir / "broker"
            pid = int((broker / "mosquitto.pid").read_text())
            if str(broker) in Path(f"/proc/{pid}/cmdline").read_text():  # ours, not a reuse
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def demos() -> Iterator[list[Demo]]:
    """Demos started in a test, killed at its end if still running."""
    started: list[Demo] = []
    yield started
    for demo in started:
        demo.kill()


def _login(demo: Demo, password: str) -> dict[str, str]:
    response = httpx.post(
        f"{demo.url}/api/v1/auth/login", json={"username": "admin", "password": password}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def _telemetry(data_dir: Path) -> tuple[int, int]:
    """Samples stored, and how many stations they come from."""
    with contextlib.closing(sqlite3.connect(data_dir / "precisionpulse.db")) as db:
        query = "SELECT count(*), count(DISTINCT device_id) FROM telemetry_samples"
        rows, stations = db.execute(query).fetchone()
        return int(rows), int(stations)


def _open_offline_reasons(data_dir: Path) -> dict[str, str]:
    with contextlib.closing(sqlite3.connect(data_dir / "precisionpulse.db")) as db:
        query = "SELECT device_id, reason FROM offline_events WHERE ended_at IS NULL"
        return dict(db.execute(query).fetchall())


def _see_configurations_applied(demo: Demo, headers: dict[str, str]) -> None:
    """Every station runs the units the demo set, signed by the demo server, and said so."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        configs = {
            d: httpx.get(f"{demo.url}/api/v1/devices/{d}/config", headers=headers).json()
            for d in STATIONS
        }
        if all(c["reported_version"] == c["desired_version"] == 1 for c in configs.values()):
            assert all(c["reported"] == c["desired"] for c in configs.values()), configs
            return
        time.sleep(0.2)
    pytest.fail(f"stations did not apply their configuration: {configs}\n{demo.output()}")


def _see_stations_streaming(demo: Demo, data_dir: Path, headers: dict[str, str], rows: int) -> int:
    """All three stations registered, started, and storing telemetry beyond ``rows``."""
    devices = httpx.get(f"{demo.url}/api/v1/devices", headers=headers).json()
    assert {d["id"] for d in devices} == {*STATIONS, WINDOW_STATION}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now, stations = _telemetry(data_dir)
        if f"ready: {demo.url}" in demo.output() and now > rows and stations == len(STATIONS):
            return now
        time.sleep(0.2)
    pytest.fail(f"no new telemetry from every station: {_telemetry(data_dir)}\n{demo.output()}")


def test_demo_runs_stops_on_ctrl_c_and_keeps_its_data(tmp_path: Path, demos: list[Demo]) -> None:
    """First run: a generated password; second run: same admin and stations, more telemetry."""
    data = tmp_path / "data"
    first = Demo(data)
    demos.append(first)
    first.wait_until_linked()
    password = CREATED.search(first.output())
    assert password is not None, first.output()
    headers = _login(first, password.group(1))
    rows = _see_stations_streaming(first, data, headers, rows=0)
    _see_configurations_applied(first, headers)
    credentials = json.loads((data / "stations.json").read_text())
    assert set(credentials) == {*STATIONS, WINDOW_STATION}
    assert (data / "stations.json").stat().st_mode & 0o077 == 0
    assert (data / f"{WINDOW_STATION}.password").read_text() == f"{credentials[WINDOW_STATION]}\n"
    assert (data / f"{WINDOW_STATION}.password").stat().st_mode & 0o077 == 0

    assert first.stop(signal.SIGINT, group=True) == 0, first.output()
    assert "stopped" in first.output()
    assert _open_offline_reasons(data) == dict.fromkeys(STATIONS, "clean")
    rows, _ = _telemetry(data)

    # PP_ADMIN_PASSWORD only chooses the password of an admin yet to be made.
    second = Demo(data, PP_ADMIN_PASSWORD="not-the-admin-password")
    demos.append(second)
    second.wait_until_linked()
    assert "created the admin account" not in second.output()
    assert "password printed on the first run" in second.output()
    again = shlex.join(
        [sys.executable, "-m", "core.cli", "demo", "--data-dir", str(data), "--port"]
    )  # the hint is this very command line, with the flag that resets
    assert f"stop the demo, then run: {again} {second.port} --broker-port" in second.output()
    assert f" {second.broker_port} --reset-admin-password" in second.output()
    headers = _login(second, password.group(1))
    _see_stations_streaming(second, data, headers, rows=rows)
    assert json.loads((data / "stations.json").read_text()) == credentials  # none re-keyed

    assert second.stop(signal.SIGTERM, group=False) == 0, second.output()
    assert _open_offline_reasons(data) == dict.fromkeys(STATIONS, "clean")


def test_demo_on_amqtt_with_a_chosen_admin_password(tmp_path: Path, demos: list[Demo]) -> None:
    """The zero-install broker serves the same demo; PP_ADMIN_PASSWORD is the admin's."""
    data = tmp_path / "data"
    demo = Demo(data, "--broker", "amqtt", PP_ADMIN_PASSWORD="chosen-admin-password")
    demos.append(demo)
    demo.wait_until_linked()
    assert "the password in PP_ADMIN_PASSWORD" in demo.output()
    assert "broker (amqtt)" in demo.output()
    _see_stations_streaming(demo, data, _login(demo, "chosen-admin-password"), rows=0)

    assert demo.stop(signal.SIGINT, group=True) == 0, demo.output()
    assert _open_offline_reasons(data) == dict.fromkeys(STATIONS, "clean")


def _window_command(demo: Demo) -> str:
    """The command the demo printed to open a window on its ready station."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = re.search(rf"^ +(\S.* desktop --device {WINDOW_STATION} .*)$", demo.output(), re.M)
        if found:
            return found.group(1)
        time.sleep(0.2)
    pytest.fail(f"no station window command:\n{demo.output()}")


def _samples_from(data_dir: Path, device_id: str) -> int:
    with contextlib.closing(sqlite3.connect(data_dir / "precisionpulse.db")) as db:
        query = "SELECT count(*) FROM telemetry_samples WHERE device_id = ?"
        return int(db.execute(query, (device_id,)).fetchone()[0])


def _until(check: Callable[[], bool], what: str, *logs: Path, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"{what} not within {within} s:\n" + "\n".join(p.read_text() for p in logs))


async def _connects(port: int, username: str, password: str) -> None:
    async with aiomqtt.Client("127.0.0.1", port, username=username, password=password):
        pass


def test_a_station_window_and_devices_registered_meanwhile_join_the_running_demo(
    tmp_path: Path, demos: list[Demo]
) -> None:
    """The printed window command works as printed; a device another process registers while
    the demo runs connects at once (simulate says so), with aiomqtt too."""
    data = tmp_path / "data"
    demo = Demo(data)
    demos.append(demo)
    demo.wait_until_linked()
    command = _window_command(demo)
    assert f"--broker mqtt://127.0.0.1:{demo.broker_port}" in command
    assert f"--server-key {data}/server-signing-key.pub.pem" in command
    assert command.endswith(f"--password-stdin < {data}/{WINDOW_STATION}.password")
    assert f"--device DEVICE-ID --broker mqtt://127.0.0.1:{demo.broker_port}" in demo.output()

    environ = {k: v for k, v in os.environ.items() if not k.startswith("PP_")}
    window_log = tmp_path / "window.log"
    with window_log.open("w") as log:
        window = subprocess.Popen(  # exactly as printed, in a terminal without a display
            ["bash", "-c", f"exec {command}"],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**environ, "QT_QPA_PLATFORM": "offscreen"},
        )
    try:
        _until(lambda: _samples_from(data, WINDOW_STATION) > 0, "the window's samples", window_log)
    finally:
        window.terminate()
        window.wait(timeout=STOP_S)

    # Registered by another process, in the demo's directory, as the README shows.
    simulate_log, credentials = tmp_path / "simulate.log", tmp_path / "late.json"
    broker = f"mqtt://127.0.0.1:{demo.broker_port}"
    flags = ["--register", "--devices", "2", "--prefix", "late", "--broker", broker]
    flags += ["--credentials", str(credentials), "--data-dir", str(tmp_path / "fleet")]
    flags += ["--server-key", str(data / "server-signing-key.pub.pem")]
    with simulate_log.open("w") as log:
        simulate = subprocess.Popen(
            [sys.executable, "-m", "core.cli", "simulate", *flags],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**environ, "PP_DATABASE_URL": f"sqlite:///{data}/precisionpulse.db"},
        )
    try:
        connected = f"all 2 stations connected to 127.0.0.1:{demo.broker_port}"
        _until(lambda: connected in simulate_log.read_text(), connected, simulate_log)
        assert "left stopped" not in simulate_log.read_text()
        _until(lambda: _samples_from(data, "late-001") > 0, "late-001's samples", simulate_log)
    finally:
        simulate.send_signal(signal.SIGINT)
        assert simulate.wait(timeout=STOP_S) == 0, simulate_log.read_text()

    # One more, registered by simulate's own code in this process: aiomqtt gets in.
    settings = Settings(
        database_url=f"sqlite:///{data}/precisionpulse.db",
        signing_key_file=data / "server-signing-key.pem",  # the audit key lies beside it
    )
    made = asyncio.run(_register(settings, ["solo-001"]))
    refusals: list[str] = []

    def connects() -> bool:
        try:
            asyncio.run(_connects(demo.broker_port, "solo-001", made["solo-001"]))
        except aiomqtt.MqttError as error:
            refusals.append(str(error))
            return False
        return True

    deadline = time.monotonic() + 10
    while not connects():
        if time.monotonic() > deadline:
            pytest.fail(f"solo-001 still refused after 10 s: {refusals[-1]}")
        time.sleep(0.2)
    assert demo.stop(signal.SIGINT, group=True) == 0, demo.output()
