"""One process per outbox: the station lock, its holder's note, and what a crash leaves."""

from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from desktop.agent.station_lock import (
    Holder,
    StationLock,
    StationRunningError,
    holder,
    lock_file,
)

STATION = "press-01"
MESSAGE = re.compile(
    r"station press-01 is already running \(pid (\d+), since "
    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC\); one process per outbox"
)


def test_the_lock_file_sits_beside_the_outbox(tmp_path: Path) -> None:
    assert lock_file(tmp_path / "press-01.outbox.db") == tmp_path / "press-01.outbox.lock"


def test_a_second_acquire_fails_at_once_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "press-01.outbox.lock"
    first = StationLock.acquire(path, station=STATION)
    try:
        seen = holder(path)
        assert seen is not None and seen.pid == os.getpid()
        assert seen.since is not None
        assert abs((datetime.now(UTC) - seen.since).total_seconds()) < 5
        started = time.monotonic()
        with pytest.raises(StationRunningError) as refused:
            StationLock.acquire(path, station=STATION)
        assert time.monotonic() - started < 1
        match = MESSAGE.fullmatch(str(refused.value))
        assert match is not None, str(refused.value)
        assert int(match[1]) == os.getpid()
        assert match[2] == f"{seen.since:%Y-%m-%d %H:%M:%S}"
        assert refused.value.holder == seen
    finally:
        first.release()


def test_release_frees_the_lock_and_empties_but_keeps_the_file(tmp_path: Path) -> None:
    path = tmp_path / "stations" / "press-01.outbox.lock"  # the data directory is made
    lock = StationLock.acquire(path, station=STATION)
    lock.release()
    lock.release()  # again: nothing happens
    assert path.exists() and path.read_bytes() == b""
    assert holder(path) is None
    StationLock.acquire(path, station=STATION).release()


def test_nobody_holds_a_lock_file_that_does_not_exist(tmp_path: Path) -> None:
    assert holder(tmp_path / "never.outbox.lock") is None


def test_a_lock_left_by_a_killed_process_never_blocks_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "press-01.outbox.lock"
    code = (
        "import sys, time; from pathlib import Path;"
        "from desktop.agent.station_lock import StationLock;"
        f"StationLock.acquire(Path({str(path)!r}), station='press-01');"
        "print('locked', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline() == "locked\n"
        seen = holder(path)
        assert seen is not None and seen.pid == child.pid
        with pytest.raises(StationRunningError, match=f"pid {child.pid}, since"):
            StationLock.acquire(path, station=STATION)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    assert str(child.pid) in path.read_text()  # the dead holder's note is still there...
    lock = StationLock.acquire(path, station=STATION)  # ...and decides nothing
    try:
        seen = holder(path)
        assert seen is not None and seen.pid == os.getpid()
    finally:
        lock.release()


def test_a_status_probe_does_not_make_a_starting_station_fail(tmp_path: Path) -> None:
    """``holder`` takes a shared lock for a moment; a station starting then waits it out."""
    path = tmp_path / "press-01.outbox.lock"
    path.touch()
    probe = os.open(path, os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH)
    threading.Timer(0.05, os.close, [probe]).start()
    StationLock.acquire(path, station=STATION).release()


def test_a_holder_that_has_not_written_itself_down_yet_is_named_unknown(tmp_path: Path) -> None:
    path = tmp_path / "press-01.outbox.lock"
    path.write_text("not yet")
    held = os.open(path, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        assert holder(path) == Holder(None, None)
        with pytest.raises(StationRunningError, match=r"running \(pid unknown\); one process"):
            StationLock.acquire(path, station=STATION)
    finally:
        os.close(held)
