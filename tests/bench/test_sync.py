"""``python -m bench.sync`` end to end at a small size: its JSON line, every station applied."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PG_ENV = "PP_TEST_DATABASE_URL"
ROOT = Path(__file__).resolve().parents[2]
STATIONS = 5
RUN_S = 150  # the bench's own watchdog is shorter: a hung run fails, never stalls the suite

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs the mosquitto binary"),
]


def test_one_change_reaches_every_station_and_the_line_says_so() -> None:
    database = os.environ.get(PG_ENV)
    if not database:
        pytest.skip(f"{PG_ENV} is not set")
    command = [sys.executable, "-m", "bench.sync", "--stations", str(STATIONS), "--rounds", "1"]
    run = subprocess.run(
        [*command, "--processes", "2", "--database-url", database],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=RUN_S,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    line = json.loads(run.stdout.strip().splitlines()[-1])
    assert (line["stations"], line["rounds"]) == (STATIONS, 1)
    # Every station connected, caught up with the log, applied the change and shows it.
    counts = ("connected", "caught_up", "expected", "applied", "shown", "raw_received")
    assert {key: line[key] for key in counts} == dict.fromkeys(counts, STATIONS)
    assert line["log_head"] > 0  # the Admin, the person, roles: the replicas had a log to pull
    assert line["page_bytes"] > 0
    latencies = [line[key] for key in ("first_p50_ms", "p50_ms", "p99_ms", "max_ms")]
    assert all(isinstance(v, float) and math.isfinite(v) and v > 0 for v in latencies)
    assert latencies == sorted(latencies)  # the first ≤ the median ≤ p99 ≤ the slowest
    assert 0 < line["raw_p50_ms"] <= line["raw_p99_ms"] <= line["raw_max_ms"]
    assert line["server_cpu_ms_per_change"] > 0  # taken from the server's own process
    assert isinstance(line["p99_within_target"], bool)
    assert "applied 5/5" in run.stdout
