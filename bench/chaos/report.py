"""The chaos run's report: a JSON file, a Markdown summary and a timeline drawn as SVG.

The timeline has one row per kind of fault: a solid bar from the fault's injection to its
clearing, a thin line on to its recovery (see bench.chaos.monitor), and under them the
stations' total backlog over time. Written by hand (a few hundred elements): no plotting
dependency for one chart.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from html import escape
from pathlib import Path
from typing import Any

from bench.chaos.faults import KINDS, Fault
from bench.chaos.monitor import Tick

WIDTH, LEFT, ROW, CHART = 1100, 190, 22, 160  # px: the drawing, the labels, a row, backlog
COLOURS = (
    "#1f77b4",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#ff7f0e",
    "#2ca02c",
    "#393b79",
)


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (inclusive), None for no values."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


def recovery_figures(faults: list[Fault]) -> dict[str, Any]:
    """Recovery p50/p99 overall and by kind (seconds), and faults never recovered."""
    times = [f.recovery_s for f in faults if f.recovery_s is not None]
    by_kind: dict[str, dict[str, float | None]] = {}
    for kind in KINDS:
        of_kind = [f.recovery_s for f in faults if f.kind == kind and f.recovery_s is not None]
        by_kind[kind] = {"p50_s": percentile(of_kind, 50), "max_s": max(of_kind, default=None)}
    return {
        "recovery_p50_s": _round(percentile(times, 50)),
        "recovery_p99_s": _round(percentile(times, 99)),
        "recovery_max_s": _round(max(times, default=None)),
        "recovery_by_kind": {k: {n: _round(v) for n, v in f.items()} for k, f in by_kind.items()},
        "not_recovered": [f.n for f in faults if f.started_at is not None and f.recovery_s is None],
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def faults_by_kind(faults: list[Fault]) -> dict[str, int]:
    """How many faults of each kind were injected (every kind listed, 0 if none)."""
    counted = Counter(f.kind for f in faults if f.started_at is not None)
    return {kind: counted.get(kind, 0) for kind in KINDS}


def timeline_svg(faults: list[Fault], ticks: list[Tick], end_s: float) -> str:
    """The run as an SVG: fault rows, then the stations' total backlog."""
    span = max(end_s, 1.0)
    plot = WIDTH - LEFT - 20

    def x(t: float) -> float:
        return LEFT + plot * min(max(t, 0.0), span) / span

    top = 30
    chart_top = top + ROW * len(KINDS) + 30
    height = chart_top + CHART + 40
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{LEFT}" y="18" font-size="13">Faults (bar: injected → cleared; '
        "line: cleared → recovered) and the stations' total backlog</text>",
    ]
    step = _tick_step(span)
    mark = 0.0
    while mark <= span:
        out.append(
            f'<line x1="{x(mark):.1f}" x2="{x(mark):.1f}" y1="{top}" '
            f'y2="{chart_top + CHART}" stroke="#eee"/>'
        )
        out.append(
            f'<text x="{x(mark):.1f}" y="{chart_top + CHART + 15}" '
            f'text-anchor="middle">{mark:.0f} s</text>'
        )
        mark += step
    for row, kind in enumerate(KINDS):
        y = top + row * ROW
        colour = COLOURS[row % len(COLOURS)]
        out.append(f'<text x="{LEFT - 8}" y="{y + 15}" text-anchor="end">{escape(kind)}</text>')
        for fault in (f for f in faults if f.kind == kind and f.started_at is not None):
            start = fault.started_at or 0.0
            cleared = fault.cleared_at if fault.cleared_at is not None else span
            width = max(x(cleared) - x(start), 2.0)
            label = f"#{fault.n} {fault.target} {fault.detail.get('summary', '')}"
            out.append(
                f'<rect x="{x(start):.1f}" y="{y + 4}" width="{width:.1f}" height="12" '
                f'fill="{colour}" opacity="0.8"><title>{escape(label)}</title></rect>'
            )
            if fault.recovered_at is not None:
                out.append(
                    f'<line x1="{x(cleared):.1f}" x2="{x(fault.recovered_at):.1f}" '
                    f'y1="{y + 10}" y2="{y + 10}" stroke="{colour}" stroke-width="2"/>'
                )
                out.append(
                    f'<line x1="{x(fault.recovered_at):.1f}" y1="{y + 5}" '
                    f'x2="{x(fault.recovered_at):.1f}" y2="{y + 15}" stroke="black"/>'
                )
    peak = max((sum(t.backlogs) for t in ticks), default=0) or 1
    out.append(
        f'<text x="{LEFT - 8}" y="{chart_top + 12}" text-anchor="end">backlog (max {peak})</text>'
    )
    out.append(
        f'<rect x="{LEFT}" y="{chart_top}" width="{plot}" height="{CHART}" '
        'fill="none" stroke="#999"/>'
    )
    points = " ".join(
        f"{x(t.at):.1f},{chart_top + CHART - CHART * sum(t.backlogs) / peak:.1f}" for t in ticks
    )
    out.append(f'<polyline points="{points}" fill="none" stroke="#d62728" stroke-width="1.2"/>')
    for t in ticks:
        if not t.healthy:
            out.append(
                f'<rect x="{x(t.at):.1f}" y="{chart_top + CHART - 4}" width="2" '
                'height="4" fill="#999"/>'
            )
    out.append("</svg>")
    return "\n".join(out)


def _tick_step(span: float) -> float:
    for step in (5, 10, 30, 60, 120):
        if span / step <= 12:
            return float(step)
    return 300.0


def markdown(result: dict[str, Any]) -> str:
    """A readable summary of the run: targets, faults, recovery, the checks' findings."""
    lines = [
        "# Chaos run",
        "",
        f"Seed {result['seed']}, {result['minutes']} min of faults, {result['stations']} "
        f"stations at {result['hz']:g} Hz; verdict: **{'PASS' if result['ok'] else 'FAIL'}**.",
        "",
        "![timeline](timeline.svg)",
        "",
        "| target | value |",
        "|---|---|",
    ]
    for key in (
        "faults",
        "lost",
        "doubled",
        "undelivered",
        "declared_dropped",
        "quarantined",
        "max_backlog",
        "recovery_p50_s",
        "recovery_p99_s",
        "recovery_max_s",
        "presence_online",
        "commands_ok",
        "drained",
    ):
        lines.append(f"| {key} | {result.get(key)} |")
    lines += [
        "",
        "## Faults by kind",
        "",
        "| kind | count | recovery p50 s | max s |",
        "|---|---|---|---|",
    ]
    for kind, count in result["faults_by_kind"].items():
        rec = result["recovery_by_kind"].get(kind, {})
        lines.append(f"| {kind} | {count} | {rec.get('p50_s')} | {rec.get('max_s')} |")
    lines += [
        "",
        "Recovery: from a fault's clearing (the process started again, the proxy's fault "
        "removed) to the first moment every process runs and the stations it touched (all, "
        "for the broker, server and database, save those under a fault of their own) have "
        "a backlog of at most two seconds of samples: their acked watermark caught up.",
        "",
        "## Server kills in the middle of an ingest transaction",
        "",
        "| fault | backend | open for ms | killed ms after seen | its transaction ended |",
        "|---|---|---|---|---|",
    ]
    for kill in result.get("ingest_kills", []):
        lines.append(
            f"| #{kill['n']} | {kill.get('backend_state')} | {kill.get('open_ms')} | "
            f"{kill.get('kill_after_seen_ms')} | {kill.get('xid_status')} |"
        )
    lines += ["", "## Stations", "", "```json", json.dumps(result["streams"], indent=1), "```"]
    lines += ["", "## Commands", "", "```json", json.dumps(result["commands"], indent=1), "```"]
    if result.get("problems"):
        lines += ["", "## Problems", ""] + [f"- {p}" for p in result["problems"]]
    return "\n".join(lines) + "\n"


def write(out_dir: Path, result: dict[str, Any], faults: list[Fault], ticks: list[Tick]) -> None:
    """chaos.json (everything, each fault and tick), summary.md and timeline.svg."""
    out_dir.mkdir(parents=True, exist_ok=True)
    full = {
        **result,
        "fault_log": [
            {
                **vars(f),
                "recovery_s": f.recovery_s,
                "detail": {k: str(v) if callable(v) else v for k, v in f.detail.items()},
            }
            for f in faults
        ],
        "ticks": [vars(t) for t in ticks],
    }
    (out_dir / "chaos.json").write_text(json.dumps(full, indent=1, default=str))
    (out_dir / "summary.md").write_text(markdown(result))
    end = max([t.at for t in ticks] + [f.cleared_at or 0.0 for f in faults] + [1.0])
    (out_dir / "timeline.svg").write_text(timeline_svg(faults, ticks, end))
