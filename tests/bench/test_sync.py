"""``python -m bench.sync`` end to end at a small size: its JSON line, every station applied."""

from __future__ import annotations

import math

from tests.bench.bench_runs import NEEDS, run_bench

STATIONS = 5
RUN_S = 150  # the bench's own watchdog is shorter: a hung run fails, never stalls the suite

pytestmark = NEEDS


def test_one_change_reaches_every_station_and_the_line_says_so() -> None:
    size = ["--stations", str(STATIONS), "--rounds", "1", "--processes", "2"]
    line, stdout = run_bench("bench.sync", *size, timeout_s=RUN_S)
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
    assert "applied 5/5" in stdout
