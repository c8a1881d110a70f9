"""``python -m bench.fleet`` end to end at a tiny size: its JSON line, every station acked."""

from __future__ import annotations

import math

import pytest

from tests.bench.bench_runs import NEEDS, run_bench

DEVICES, PROCESSES, RATE, CHANNELS = 20, 2, 2.0, 10
RUN_S = 150  # a server, two station processes, one short step: ~25 s; a hung run fails
GROUPS = {"fleet_1", "fleet_2", "server", "mosquitto", "postgres_backends", "postgres_other"}
STEP_KEYS = {
    "rate_hz",
    "connected",
    "connect_s",
    "scheduled_samples_per_s",
    "samples_per_s",
    "share_of_schedule",
    "acked_samples_per_s",
    "points_per_s",
    "ack_lag_p50_ms",
    "ack_lag_p99_ms",
    "ack_lag_max_ms",
    "lagged_samples",
    "unacked_after_grace",
    "stations_acked",
    "backlog_start",
    "backlog_end",
    "backlog_growing",
    "station_loop_lag_p99_ms",
    "cpu",
    "cpu_ms_per_sample",
    "rss_mb",
    "pss_mb",
    "busiest",
    "held",
    "load_avg_1m_at_start",
    "machine_busy_share",
    "warmup_s",
    "server_messages_per_s",
    "server_rows_per_s",
    "server_acks_per_s",
    "server_store_failures_per_s",
    "server_ingest_lag_mean_ms",
}

pytestmark = NEEDS


def test_a_small_fleet_is_measured_and_every_station_acked() -> None:
    size = ["--devices", str(DEVICES), "--processes", str(PROCESSES), "--rates", str(RATE)]
    times = ["--warmup", "2", "--seconds", "4"]
    line, _ = run_bench("bench.fleet", *size, *times, timeout_s=RUN_S)
    assert (line["devices"], line["processes"], line["channels"]) == (DEVICES, PROCESSES, CHANNELS)
    (step,) = line["steps"]
    assert set(step) - {k for k in step if k.startswith("server_dropped_")} == STEP_KEYS
    assert step["connected"] == step["stations_acked"] == DEVICES
    assert step["unacked_after_grace"] == 0
    # Every station sampled on schedule and the server acked it: the window's samples all
    # timed, their lags sensible (a few ms to well under the 2 s target on an idle box).
    assert step["scheduled_samples_per_s"] == DEVICES * RATE
    assert 0.9 <= step["share_of_schedule"] <= 1.05
    assert step["points_per_s"] == pytest.approx(step["acked_samples_per_s"] * CHANNELS)
    assert step["lagged_samples"] >= 0.9 * DEVICES * RATE * line["seconds"]
    lags = [step[k] for k in ("ack_lag_p50_ms", "ack_lag_p99_ms", "ack_lag_max_ms")]
    assert all(math.isfinite(v) and v > 0 for v in lags)
    assert lags == sorted(lags)
    assert lags[1] < line["p99_target_ms"]
    # Every process measured: CPU taken, memory present.
    assert set(step["rss_mb"]) == GROUPS
    assert all(step["rss_mb"][name] > 1 for name in GROUPS - {"postgres_other"})
    assert step["cpu"]["server"] > 0 and step["cpu"]["fleets"] > 0
    # The server's own counters agree: it stored every sample's ten points and acked them.
    assert step["server_rows_per_s"] >= 0.9 * step["points_per_s"]
    assert step["server_acks_per_s"] > 0 and step["server_store_failures_per_s"] == 0
    assert step["held"] is True and line["held_rates_hz"] == [RATE]


def test_bare_clients_time_their_acks_as_stations_do() -> None:
    """``--bare``: no agents, only their MQTT traffic; each sample still timed to its ack."""
    size = ["--devices", str(DEVICES), "--processes", str(PROCESSES), "--rates", str(RATE)]
    line, _ = run_bench("bench.fleet", *size, "--bare", "--seconds", "4", timeout_s=RUN_S)
    assert line["bare"] is True
    (step,) = line["steps"]
    assert set(step["rss_mb"]) == {"raw_1", "raw_2"} | GROUPS - {"fleet_1", "fleet_2"}
    assert step["scheduled_samples_per_s"] == DEVICES * RATE
    assert step["samples_per_s"] == pytest.approx(DEVICES * RATE, rel=0.1)
    # Every sample of the window acked (a lost one would stall its stream and be counted).
    assert step["unacked_after_grace"] == 0
    assert step["acked_samples_per_s"] == pytest.approx(step["samples_per_s"], rel=0.1)
    lags = [step[k] for k in ("ack_lag_p50_ms", "ack_lag_p99_ms", "ack_lag_max_ms")]
    assert all(math.isfinite(v) and v > 0 for v in lags) and lags == sorted(lags)
    assert lags[1] < line["p99_target_ms"]
    assert step["server_rows_per_s"] >= 0.9 * step["acked_samples_per_s"] * CHANNELS
    assert step["cpu"]["raws"] > 0 and step["held"] is True and line["held_rates_hz"] == [RATE]
