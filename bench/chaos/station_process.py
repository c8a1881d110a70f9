"""One chaos station: a ``precisionpulse agent`` process of its own, so it can be SIGKILLed.

It reaches the broker through its fault proxy, trusts the server's key, samples the
quietable simulated source at the run's rate, and keeps its outbox in its own directory.
``outbox`` reads that file read-only (``desktop.agent.outbox.summary``): it never waits for
nor blocks the station, and works while the station is down.

Every station runs through ``bench.chaos.station``'s wrapper, its wall clock moved by
``skew_s`` (0: not moved): the sampler's timestamps, command deadlines and hybrid clock all
read that clock, while ``time.monotonic`` (pacing, timeouts) is untouched.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
from pathlib import Path

from bench.chaos import station
from bench.chaos.source import QUIET_ENV
from desktop.agent.config import outbox_file
from desktop.agent.outbox import OutboxSummary, summary

STOP_S = 10.0  # a clean stop says goodbye on the broker; a station past this is killed


class StationProcess:
    """A station's process, started and stopped (cleanly or by SIGKILL) as often as asked."""

    def __init__(
        self,
        device_id: str,
        password: str,
        *,
        workdir: Path,
        server_key: Path,
        interval_s: float,
        quiet_file: Path,
    ) -> None:
        self.device_id, self._password = device_id, password
        self.data_dir = workdir / device_id
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / f"{device_id}.log"
        self._server_key, self._interval_s, self._quiet = server_key, interval_s, quiet_file
        self.process: subprocess.Popen[bytes] | None = None
        self.skew_s = 0.0
        self.broker_port = 0

    @property
    def running(self) -> bool:
        """Whether its process was started and has not exited."""
        return self.process is not None and self.process.poll() is None

    def start(self, broker_port: int, *, skew_s: float = 0.0) -> None:
        """Start the agent against ``broker_port`` (its proxy), its clock moved by ``skew_s``."""
        self.broker_port, self.skew_s = broker_port, skew_s
        environ = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("PP_") and k != "PYTEST_CURRENT_TEST"
        }
        environ[QUIET_ENV] = str(self._quiet)
        arguments = [
            "agent",
            "--device",
            self.device_id,
            "--password-stdin",
            "--broker",
            f"mqtt://127.0.0.1:{broker_port}",
            "--data-dir",
            str(self.data_dir),
            "--interval",
            str(self._interval_s),
            "--server-key",
            str(self._server_key),
            "--source",
            "bench.chaos.source:simulated",
        ]
        command = [*station.command(skew_s), *arguments]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=environ,
                start_new_session=True,
            )
        assert self.process.stdin is not None
        self.process.stdin.write(f"{self._password}\n".encode())
        self.process.stdin.close()

    def kill(self) -> None:
        """SIGKILL: a crash, nothing said on the broker (its last will speaks)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM, as a service manager stops it; SIGKILL past STOP_S."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(STOP_S)
        except subprocess.TimeoutExpired:
            self.kill()

    def outbox(self) -> OutboxSummary | None:
        """What its outbox holds now (None before the station first created it)."""
        try:
            return summary(outbox_file(self.data_dir, self.device_id))
        except (OSError, sqlite3.Error):  # not there yet, or being created
            return None
