"""One process per outbox: while a station runs, it holds an exclusive lock beside its outbox.

The rules:

- The lock is ``fcntl.flock(LOCK_EX | LOCK_NB)`` on ``<device>.outbox.lock``, next to
  ``<device>.outbox.db``. A station takes it *before* it opens the outbox for writing and lets
  it go only after closing it, so a second process on the same outbox fails at once and never
  touches its seqs.
- The operating system decides who holds it: the kernel drops a flock when its holder's file
  is closed, which happens however a process ends (``kill -9`` included). A lock left by a
  killed process therefore never blocks a restart. What the file says is for messages only,
  never for the decision.
- Once it holds the lock, the station writes its pid and start time (JSON, ISO 8601 in UTC)
  into the file; anyone may read them with ``holder`` without holding the lock.
- The file is emptied on release, never deleted: a process that opened the old file just
  before would lock an inode nobody else sees while a third locks a new one, and two stations
  would run.
- flock belongs to an open file, not to a process: a second ``acquire`` in the same process
  (two fleets on one data directory) fails as well.
- ``holder`` probes with a shared lock for a few microseconds; ``acquire`` waits out such a
  probe (ACQUIRE_GRACE_S) before it calls the outbox taken.

POSIX only (``fcntl``); the station's platforms are Linux and macOS.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ACQUIRE_GRACE_S = 0.2  # a status probe holds its shared lock for microseconds, not this long
ACQUIRE_RETRY_S = 0.01


def lock_file(outbox: Path) -> Path:
    """The lock file of an outbox: ``<device>.outbox.lock`` beside ``<device>.outbox.db``."""
    return outbox.with_suffix(".lock")


@dataclass(frozen=True)
class Holder:
    """The process holding a station's lock, as it wrote itself down (None: not readable)."""

    pid: int | None
    since: datetime | None

    def __str__(self) -> str:
        pid = "unknown" if self.pid is None else str(self.pid)
        since = "" if self.since is None else f", since {self.since:%Y-%m-%d %H:%M:%S} UTC"
        return f"pid {pid}{since}"


class StationRunningError(RuntimeError):
    """Another process (or another station object) runs the station on this outbox."""

    def __init__(self, station: str, holder: Holder) -> None:
        self.station = station
        self.holder = holder
        super().__init__(f"station {station} is already running ({holder}); one process per outbox")


class StationLock:
    """The lock of one running station; ``release`` it once its outbox is closed."""

    def __init__(self, fd: int) -> None:
        self._fd: int | None = fd  # None once released

    @classmethod
    def acquire(cls, path: Path, *, station: str) -> StationLock:
        """Take the lock at ``path`` and write this process down; StationRunningError if held."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # A bare descriptor, not a file object: nothing but release() or the process's end
        # closes it, and so lets the lock go.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            _lock_exclusively(fd, station)
            since = datetime.now(UTC).replace(microsecond=0)
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "since": since.isoformat()}).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd)

    def release(self) -> None:
        """Empty the file and let the lock go; releasing again does nothing."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the file is what releases the flock


def holder(path: Path) -> Holder | None:
    """Who holds the lock at ``path`` right now, or None if nobody does; takes no lock for long."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _written(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _lock_exclusively(fd: int, station: str) -> None:
    deadline = time.monotonic() + ACQUIRE_GRACE_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StationRunningError(station, _written(fd)) from None
            time.sleep(ACQUIRE_RETRY_S)


def _written(fd: int) -> Holder:
    """The holder as written in the file (its fields None while it has not written yet)."""
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
        pid = record.get("pid")
        since = record.get("since")
        return Holder(
            pid if isinstance(pid, int) else None,
            datetime.fromisoformat(since) if isinstance(since, str) else None,
        )
    except (OSError, ValueError, AttributeError):
        return Holder(None, None)
