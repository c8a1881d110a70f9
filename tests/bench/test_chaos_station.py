"""Chaos stations: a real agent with a skewed clock, and one whose disk fills up and empties."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bench.chaos.station import SmallDisk
from bench.chaos.station import command as station_command
from broker.mosquitto_process import free_port
from desktop.agent.config import outbox_file

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 15.0  # seconds: a station process imports for ~2 s on a loaded box
INTERVAL = "0.02"  # seconds between samples: many refused in the short full-disk window
SKEW_S = 300.0
# seconds: a full disk refuses a sample once the WAL's own space (up to ~1,000 pages before
# a checkpoint that cannot grow the database) is used: a few seconds at 50 samples/s, longer
# on a loaded box
FULL_WAIT = 60.0
NOT_WRITTEN = "samples not written"
DEVICE = "chaos-1"


@pytest.fixture(scope="module")
def broker_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A bare Mosquitto (anonymous): the station samples live instead of waiting for one."""
    mosquitto = shutil.which("mosquitto")
    if mosquitto is None:
        pytest.skip("needs the mosquitto binary")
    port = free_port()
    conf = tmp_path_factory.mktemp("broker") / "mosquitto.conf"
    user = pwd.getpwuid(os.geteuid()).pw_name  # as root it would switch to 'mosquitto'
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nuser {user}\n")
    process = subprocess.Popen(
        [mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        yield port
    finally:
        process.kill()
        process.wait()


def _station(
    data_dir: Path, log: Path, broker_port: int, skew_s: float = 0.0
) -> subprocess.Popen[bytes]:
    """``python -m bench.chaos.station --skew-s S agent …``, as the orchestrator runs it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PP_")}
    command = [*station_command(skew_s), "agent", "--device", DEVICE]
    command += ["--password-stdin", "--broker", f"mqtt://127.0.0.1:{broker_port}"]
    command += ["--data-dir", str(data_dir), "--interval", INTERVAL]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=out, stderr=out, env=environ, cwd=ROOT
        )
    assert process.stdin is not None
    process.stdin.write(b"any-password\n")
    process.stdin.close()
    return process


def _rows(data_dir: Path) -> list[tuple[int, int]]:
    """(seq, ts) of every stored sample, read-only beside the running station."""
    path = outbox_file(data_dir, DEVICE)
    if not path.exists():
        return []
    uri = f"{path.as_uri()}?mode=ro"
    db = sqlite3.connect(uri, uri=True)
    try:
        return [(int(s), int(t)) for s, t in db.execute("SELECT seq, ts FROM outbox ORDER BY seq")]
    except sqlite3.OperationalError:  # the schema is being created
        return []
    finally:
        db.close()


def _next_seq(data_dir: Path) -> int:
    db = sqlite3.connect(outbox_file(data_dir, DEVICE))
    try:
        return int(db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()[0])
    finally:
        db.close()


def _until(
    what: str,
    check: Callable[[], bool],
    process: subprocess.Popen[bytes],
    timeout: float = TIMEOUT,
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert process.poll() is None, f"the station exited ({process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"no {what} in {timeout} s"
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


def test_a_skewed_station_stamps_its_samples_with_its_own_clock(
    tmp_path: Path, broker_port: int
) -> None:
    """Five minutes ahead: every sample's ts is five minutes past the real time it was taken."""
    data_dir = tmp_path / DEVICE
    before = time.time()
    process = _station(data_dir, tmp_path / "station.log", broker_port, SKEW_S)
    try:
        _until("three samples", lambda: len(_rows(data_dir)) >= 3, process)
    finally:
        assert _stop(process) == 0, (tmp_path / "station.log").read_text()
    after = time.time()
    stamps = [ts / 1000 for _, ts in _rows(data_dir)]
    assert all(before + SKEW_S <= ts <= after + SKEW_S for ts in stamps), (before, stamps)


@pytest.mark.skipif(not SmallDisk.possible(), reason="mounting a tmpfs needs root")
def test_a_full_disk_refuses_samples_without_losing_a_seq_and_the_station_goes_on(
    tmp_path: Path, broker_port: int
) -> None:
    """The station lives through a full disk; the samples it could not store got no seq; once
    the space is back it stores again from the next seq: none missing, none doubled."""
    data_dir = tmp_path / DEVICE
    log = tmp_path / "station.log"
    with SmallDisk(data_dir, size_mb=16) as disk:
        process = _station(data_dir, log, broker_port)
        try:
            _until("samples", lambda: len(_rows(data_dir)) >= 3, process)
            assert disk.fill() > 0
            # SQLite goes on writing into the WAL space it already has until that runs out.
            _until("a refused sample", lambda: NOT_WRITTEN in log.read_text(), process, FULL_WAIT)
            refused_at = time.time()
            time.sleep(0.5)  # more refused samples, the station alive through them
            assert process.poll() is None
            stored_while_full = len(_rows(data_dir))
            disk.free()
            freed_at = time.time()
            _until("samples again", lambda: len(_rows(data_dir)) > stored_while_full + 3, process)
        finally:
            assert _stop(process) == 0, log.read_text()
        rows, next_seq = _rows(data_dir), _next_seq(data_dir)
    seqs = [seq for seq, _ in rows]
    assert seqs == list(range(1, next_seq)), "a seq was given and lost, or given twice"
    text = log.read_text()
    assert text.count(NOT_WRITTEN) == 1, "a full disk is said once, not per sample"
    again = re.search(r"writing samples again, after (\d+) could not be written", text)
    assert again is not None, text[-2000:]
    assert int(again.group(1)) >= 10
    # The refused samples left a hole in time, not in seqs: none was stored while refused.
    assert not [ts for _, ts in rows if refused_at + 0.2 < ts / 1000 < freed_at - 0.1]
