"""The fleet bench's figures: a step's from its window, when it is held, and the printout.

A step is held when the ack lag p99 is within P99_TARGET_MS, its stations took HELD_SHARE
of the scheduled samples or more, and the backlog did not grow past what that lag allows.
"""

from __future__ import annotations

import argparse
from array import array
from dataclasses import dataclass
from typing import Any

from bench.command_stations import p50, p99
from bench.usage import Use

P99_TARGET_MS = 2_000.0  # issue 18's target: a sample's ack back at its station within 2 s
HELD_SHARE = 0.98  # of the scheduled samples taken: a station's loop keeping its pace


@dataclass(frozen=True)
class Window:
    """One measured window: the processes' figures, each group's use, the server's counters'
    rates, and the machine's busy share (of all its cores)."""

    answers: list[dict[str, Any]]
    uses: dict[str, Use]
    server: dict[str, float]
    busy: float


def figures_of(
    args: argparse.Namespace,
    rate: float,
    ready: list[tuple[Any, ...]],
    window: Window,
) -> dict[str, Any]:
    """One step's figures from the processes' answers and the groups' use."""
    answers, uses = window.answers, window.uses
    lags_ms = _lags_ms(answers)
    window = max(a["window_s"] for a in answers)
    scheduled = len(args.credentials) * rate
    taken = sum(a["taken"] for a in answers) / window
    acked = sum(a["acked"] for a in answers) / window
    backlog_start = sum(a["backlog_start"] for a in answers)
    backlog_end = sum(a["backlog_end"] for a in answers)
    lags = _lag_figures(lags_ms)
    growing = backlog_end > backlog_start + scheduled * P99_TARGET_MS / 1000
    held = lags["ack_lag_p99_ms"] <= P99_TARGET_MS and taken >= HELD_SHARE * scheduled
    return {
        "rate_hz": rate,
        "connected": sum(a[1] for a in ready),
        "connect_s": max(a[2] for a in ready),
        "scheduled_samples_per_s": scheduled,
        "samples_per_s": taken,
        "share_of_schedule": taken / scheduled,
        "acked_samples_per_s": acked,
        "points_per_s": acked * args.channels,
        **lags,
        "lagged_samples": len(lags_ms),
        "unacked_after_grace": sum(a["unacked"] for a in answers),
        "stations_acked": sum(a["stations_acked"] for a in answers),
        "backlog_start": backlog_start,
        "backlog_end": backlog_end,
        "backlog_growing": growing,
        "station_loop_lag_p99_ms": max(a["loop_lag_p99_ms"] for a in answers),
        **_use_figures(uses, "fleet", taken),
        "pss_mb": {name: u.pss_mb for name, u in uses.items()},
        "busiest": max((n for n in uses), key=lambda n: uses[n].cpu_share),
        "held": held and not growing,
    }


def bare_figures(args: argparse.Namespace, rate: float, window: Window) -> dict[str, Any]:
    """The bare clients' figures over a window: what they sent and got acked, the ack lag
    (unacked samples at what they waited), each process's CPU; held by the same rule,
    what was sent standing for what was taken (a bare client has no backlog to grow)."""
    answers, uses = window.answers, window.uses
    lags_ms = _lags_ms(answers)
    seconds = max(a["window_s"] for a in answers)
    scheduled = len(args.credentials) * rate
    sent = sum(a["sent"] for a in answers) / seconds
    lags = _lag_figures(lags_ms)
    return {
        "rate_hz": rate,
        "scheduled_samples_per_s": scheduled,
        "samples_per_s": sent,
        "acked_samples_per_s": sum(a["acked"] for a in answers) / seconds,
        **lags,
        "unacked_after_grace": sum(a["unacked"] for a in answers),
        **_use_figures(uses, "raw", sent),
        "machine_busy_share": window.busy,
        "held": lags["ack_lag_p99_ms"] <= P99_TARGET_MS and sent >= HELD_SHARE * scheduled,
        **window.server,
    }


def _lag_figures(lags_ms: list[float]) -> dict[str, float]:
    """Ack lag p50, p99 and max of sorted lags (NaN for none)."""
    return {
        "ack_lag_p50_ms": p50(lags_ms),
        "ack_lag_p99_ms": p99(lags_ms),
        "ack_lag_max_ms": lags_ms[-1] if lags_ms else float("nan"),
    }


def _use_figures(uses: dict[str, Use], group: str, samples_per_s: float) -> dict[str, Any]:
    """Each process's CPU (with the ``group``'s processes summed as ``{group}s``), its CPU
    a sample (what a sample costs where: the box's budget) and its memory."""
    cpu = {name: u.cpu_share for name, u in uses.items()}
    cpu[f"{group}s"] = sum(u.cpu_share for name, u in uses.items() if name.startswith(f"{group}_"))
    return {
        "cpu": cpu,
        "cpu_ms_per_sample": {k: 1000 * v / max(samples_per_s, 1e-9) for k, v in cpu.items()},
        "rss_mb": {name: u.rss_mb for name, u in uses.items()},
    }


def _lags_ms(answers: list[dict[str, Any]]) -> list[float]:
    """Every process's ack lags of the window, in ms, sorted."""
    lags = array("d")
    for answer in answers:
        lags.frombytes(answer["lags"])
    return sorted(lag * 1000 for lag in lags)


def line_of(s: dict[str, Any]) -> str:
    """One step in a line: pace, acks, lag, backlog (a bare step's: what stayed unacked),
    CPU, held."""
    bare = "backlog_start" not in s
    each = "raw_" if bare else "fleet_"
    cpu = "  ".join(f"{k} {v:.0%}" for k, v in s["cpu"].items() if not k.startswith(each))
    pace = f"{s['samples_per_s']:,.0f}/{s['scheduled_samples_per_s']:,.0f} samples/s"
    if bare:
        acked = f" sent, {s['acked_samples_per_s']:,.0f} acked"
        queue = f"unacked {s['unacked_after_grace']}"
    else:
        acked = f", {s['points_per_s']:,.0f} points/s acked"
        queue = f"backlog {s['backlog_start']}→{s['backlog_end']}"
    lag = f"ack lag p50 {s['ack_lag_p50_ms']:.0f} ms p99 {s['ack_lag_p99_ms']:.0f} ms"
    return f"{pace}{acked}, {lag}, {queue}, CPU {cpu}; held {s['held']}"


def summary(line: dict[str, Any]) -> None:
    """Print each step's figures for a person."""
    print(
        f"fleet: {line['devices']} stations x {line['channels']} channels over "
        f"{line['processes']} processes, {line['seconds']:g} s measured a step"
    )
    if line.get("bare"):
        print("  bare clients only (no station agents): the server side's capacity")
    for s in line["steps"]:
        print(f"  {s['rate_hz']:g} Hz (load {s['load_avg_1m_at_start']:.2f}): {line_of(s)}")
        if line.get("bare"):
            continue
        memory = "  ".join(f"{k} {v:.0f}" for k, v in s["rss_mb"].items())
        print(
            f"      RSS MB {memory}; PostgreSQL backends PSS {s['pss_mb']['postgres_backends']:.0f}"
        )
        if "raw" in s:
            print(
                f"      bare clients {s['raw']['samples_per_s']:,.0f} samples/s at "
                f"{s['raw']['cpu']['raws']:.0%} of a core: the fleet {s['fleet_vs_raw_cpu']:.1f}x"
            )
    target = f"p99 ≤ {P99_TARGET_MS:.0f} ms, ≥ {HELD_SHARE:.0%} of schedule"
    print(f"  held ({target}): {line['held_rates_hz']}")


def rounded(value: Any) -> Any:
    """Floats to 4 decimals, in dicts and lists too: the JSON line stays readable."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v) for v in value]
    return value
