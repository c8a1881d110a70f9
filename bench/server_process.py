"""A ``precisionpulse serve`` process for benches: on the bench's database and broker.

The server runs as an operator runs it, in a process of its own, so its event loop shares
nothing with the bench's clients or the stations. Its keys (signing, audit) live in the
bench's directory: the bench reads the public key for its stations and writes the admin
with the same audit key.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench.demo_process import interrupt_group
from broker.mosquitto_process import free_port
from core.settings import Settings

START_S = 60.0  # a cold import of the UI stack and the broker link on a loaded machine
STOP_S = 20.0  # the server says goodbye on the broker and drains ingest, then stops


def settings_for(workdir: Path, database_url: str) -> Settings:
    """The settings the bench shares with its server: the database and the key files."""
    return Settings(database_url=database_url, signing_key_file=workdir / "server-signing-key.pem")


class ServerProcess:
    """One server in its own session (so a stop reaches all of it), linked to the broker."""

    def __init__(
        self, workdir: Path, settings: Settings, *, broker_url: str, account: tuple[str, str]
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "server.log"
        # Our own PP_* settings would leak into the server's; PYTEST_CURRENT_TEST would put
        # NiceGUI in its test mode.
        # The ingest knobs (PP_INGEST_*) pass, so a bench can measure the server with them.
        environ = {
            k: v
            for k, v in os.environ.items()
            if (not k.startswith("PP_") or k.startswith("PP_INGEST_"))
            and k != "PYTEST_CURRENT_TEST"
        }
        environ |= {
            "PP_DATABASE_URL": settings.database_url,
            "PP_SIGNING_KEY_FILE": str(settings.signing_key_file),
            "PP_MQTT_URL": broker_url,
            "PP_MQTT_USERNAME": account[0],
            "PP_MQTT_PASSWORD": account[1],
            "PP_MQTT_CLIENT_ID": account[0],
            "NICEGUI_STORAGE_PATH": str(workdir / ".nicegui"),
        }
        command = [sys.executable, "-m", "core.cli", "serve", "--port", str(self.port)]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=environ, start_new_session=True
            )

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self.process.pid

    def wait_until_linked(self) -> None:
        """Until the API answers and the server's broker link is up."""
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                msg = f"the server exited ({self.process.returncode}):\n{self.log.read_text()}"
                raise RuntimeError(msg)
            try:
                health = httpx.get(f"{self.url}/api/v1/health", timeout=1).json()
                if health["broker"]["state"] == "connected":
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        msg = f"the server was not linked in {START_S:.0f} s:\n{self.log.read_text()}"
        raise RuntimeError(msg)

    def stop(self) -> int:
        """Ctrl-C to the whole group, as a terminal sends it; SIGKILL if it does not stop."""
        return interrupt_group(self.process, STOP_S)
