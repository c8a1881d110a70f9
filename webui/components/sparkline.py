"""A tiny trend line drawn as an SVG polyline: one string, no chart library, cheap per row.

The fleet shows one per device on screen, from the live hub's recent samples (memory only).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from html import escape

from webui.backbone.hub import LivePoint

WIDTH, HEIGHT = 96, 24  # px: about a word wide and a line high, so rows stay one line tall
TREND_SAMPLES = 60  # the latest samples drawn: a minute at 1 Hz, enough to see a direction


def numeric(value: object) -> bool:
    """Whether a value can be drawn as a line (numbers; booleans are states, not trends)."""
    return isinstance(value, int | Decimal) and not isinstance(value, bool)


def points(samples: Sequence[LivePoint], channel: str) -> str:
    """The polyline's ``points`` for ``channel`` over ``samples`` ("" with fewer than two)."""
    found = [(p.ts_ms, float(p.values[channel])) for p in samples if numeric(p.values.get(channel))]
    if len(found) < 2:
        return ""
    t0, t1 = found[0][0], found[-1][0]
    low = min(v for _, v in found)
    high = max(v for _, v in found)
    span_t, span_v = (t1 - t0) or 1, (high - low) or 1.0
    pad = 2  # keeps the stroke inside the box at the extremes
    return " ".join(
        f"{(t - t0) / span_t * WIDTH:.1f},"
        f"{pad + (HEIGHT - 2 * pad) * (1 - ((v - low) / span_v if high > low else 0.5)):.1f}"
        for t, v in found
    )


def svg(line: str, title: str) -> str:
    """The sparkline's markup (an empty box when there is no line yet, so rows keep their size)."""
    body = f'<polyline points="{line}" fill="none" stroke="#2563eb" stroke-width="1.5"/>'
    return (
        f'<svg width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f"{body if line else ''}</svg>"
    )
