"""A ``precisionpulse demo`` process for benches: started, signed into, measured and stopped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.cpu import descendants, process_seconds
from broker.mosquitto_process import free_port

ADMIN_PASSWORD = "bench-admin-password"
START_S = 60.0  # a cold import of the UI stack on a loaded machine takes most of this
STOP_S = 20.0  # the demo says goodbye for its stations, drains ingest, then stops the broker
BROKER = re.compile(r"broker \(\w+\) on ([\d.]+):(\d+)")


def interrupt_group(process: subprocess.Popen[bytes], stop_s: float) -> int:
    """Ctrl-C to ``process``'s whole group (it leads one), SIGKILL after ``stop_s``; its code."""
    if process.poll() is not None:
        return process.returncode
    os.killpg(process.pid, signal.SIGINT)
    try:
        return process.wait(timeout=stop_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        return process.wait()


class DemoProcess:
    """One demo in its own session (so Ctrl-C reaches the group), its admin's password known."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / "demo.log"
        # Our own PP_* settings would leak into the demo's; PYTEST_CURRENT_TEST would put
        # NiceGUI in its test mode.
        environ = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PP_") and k != "PYTEST_CURRENT_TEST"
        }
        environ["PATH"] = f"{environ.get('PATH', '')}:/usr/sbin"  # Debian's mosquitto
        environ["PP_ADMIN_PASSWORD"] = ADMIN_PASSWORD
        command = [sys.executable, "-m", "core.cli", "demo", "--data-dir", str(data_dir)]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environ,
                start_new_session=True,
            )
        self.token = ""

    @property
    def pid(self) -> int:
        """The demo's process id: server, ingest and the three stations all run in it."""
        return self.process.pid

    def output(self) -> str:
        """Everything the demo printed so far."""
        return self.log.read_text()

    def broker_port(self) -> int:
        """The embedded broker's port, as the demo announced it."""
        found = BROKER.search(self.output())
        if found is None:
            msg = f"the demo did not announce its broker:\n{self.output()}"
            raise RuntimeError(msg)
        return int(found[2])

    def wait_until_ready(self) -> None:
        """Until the server's broker link is up and the stations have started."""
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                msg = f"the demo exited ({self.process.returncode}):\n{self.output()}"
                raise RuntimeError(msg)
            try:
                health = httpx.get(f"{self.url}/api/v1/health", timeout=1).json()
                if health["broker"]["state"] == "connected" and "ready: " in self.output():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        msg = f"the demo was not ready in {START_S:.0f} s:\n{self.output()}"
        raise RuntimeError(msg)

    def api(self, method: str, path: str, body: object = None) -> httpx.Response:
        """A call to the REST API as the admin (signed in on first use)."""
        if not self.token:
            login = httpx.post(
                f"{self.url}/api/v1/auth/login",
                json={"username": "admin", "password": ADMIN_PASSWORD},
                timeout=30,
            )
            login.raise_for_status()
            self.token = login.json()["access_token"]
        headers = {"Authorization": f"Bearer {self.token}"}
        response = httpx.request(
            method, f"{self.url}/api/v1{path}", headers=headers, json=body, timeout=30
        )
        response.raise_for_status()
        return response

    def register(self, device_id: str) -> str:
        """Register ``device_id``; its MQTT password (the server updates the broker's file)."""
        made = self.api("POST", "/devices", {"id": device_id, "name": "bench"})
        password: str = made.json()["mqtt_password"]
        return password

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU time (user + system) so far of the demo itself and of its children (the broker)."""
        children = sum(process_seconds(pid) for pid in descendants(self.pid))
        return process_seconds(self.pid), children

    def stop(self) -> int:
        """Ctrl-C to the whole group, as a terminal sends it; SIGKILL if it does not stop."""
        return interrupt_group(self.process, STOP_S)
