"""A PostgreSQL cluster of the chaos run's own: initdb into a temp dir, pg_ctl on a free port.

The machine's shared cluster serves other tests: a chaos run restarts only this one. Root may
not run initdb or postgres, so as root every pg_ctl call runs as the ``postgres`` user
(``runuser``) and the directory is handed to it; any other user runs them directly.

A chaos restart is ``crash`` (``pg_ctl stop -m immediate``), a pause, then ``start``: the
server stops as in a crash (no shutdown checkpoint, every backend gone at once, open
transactions lost) and replays its WAL on start. That is the harder case for the ack
watermark than a fast stop: an ack may only ever follow a commit that survives a crash.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from broker.mosquitto_process import free_port

BIN = Path(os.environ.get("PP_CHAOS_PG_BIN", "/usr/lib/postgresql/15/bin"))
SUPERUSER = "postgres"  # initdb's superuser, reached over loopback with trust
START_S = 60  # pg_ctl -w waits this long: WAL replay after an immediate stop on a loaded box
DATABASE = "chaos"


class Cluster:
    """One PostgreSQL server on a loopback port; its data in a temp dir removed by ``remove``."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pp-chaos-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    @property
    def server_url(self) -> str:
        """The maintenance database's URL (to create and drop the run's database)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"

    @property
    def url(self) -> str:
        """The run's database."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_postgres else []
        done = subprocess.run(
            [*prefix, *command], capture_output=True, text=True, timeout=START_S + 30, check=False
        )
        if done.returncode != 0:
            msg = f"{' '.join(command)} failed ({done.returncode}): {done.stdout}{done.stderr}"
            raise RuntimeError(msg)

    def init(self) -> None:
        """Create the cluster (trust on loopback, as the shared one) and start it."""
        self._run(
            str(BIN / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "--no-sync"
        )
        self.start()
        self._run(
            str(BIN / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            DATABASE,
        )

    def _ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root}"
        self._run(
            str(BIN / "pg_ctl"),
            action,
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            str(START_S),
            "-o",
            options,
            *extra,
        )

    @property
    def running(self) -> bool:
        """Whether the server runs (its pid file is there: removed on any stop we make)."""
        return (self.data / "postmaster.pid").exists()

    def start(self) -> None:
        """Start the server; returns once it accepts connections."""
        self._ctl("start")

    def crash(self) -> None:
        """Stop at once, as in a crash (immediate): WAL replay on the next start."""
        self._ctl("stop", "-m", "immediate")

    def stop(self) -> None:
        """Stop (fast: open transactions roll back), if it runs."""
        if self.running:
            self._ctl("stop", "-m", "fast")

    def remove(self) -> None:
        """Stop and delete the cluster's files."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
