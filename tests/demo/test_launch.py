"""``precisionpulse demo`` as a newcomer runs it: one process, Ctrl-C, and again the next day."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from broker.mosquitto_process import free_port

STATIONS = {"press-01", "lathe-02", "oven-03"}
START_S = 60.0  # a cold import of the UI stack on a loaded CI box takes most of this
STOP_S = 15.0
CREATED = re.compile(r"created the admin account: admin / (\S+)")


class Demo:
    """One ``precisionpulse demo`` process in its own session, as a terminal would run it."""

    def __init__(self, data_dir: Path, *args: str, **env: str) -> None:
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
        command = [sys.executable, "-m", "core.cli", "demo", "--data-dir", str(data_dir)]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port), *args],
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
        """Whatever happened, nothing outlives the test (the broker stops with the group)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


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
    assert {d["id"] for d in devices} == STATIONS
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
    assert set(credentials) == STATIONS and (data / "stations.json").stat().st_mode & 0o077 == 0

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
