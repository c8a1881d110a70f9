"""The history chart's options: channels' buckets on y axes named by their units.

Each channel draws its mean as a line and its min and max as thin lines of the same colour;
replayed buckets are amber dots. Channels with the same unit share an axis, the first on
the left and the others on the right; booleans share one On/Off axis, where a bucket's mean
is the share of its time On.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from core.services.telemetry.history import Bucket
from webui.components import chart_words
from webui.components.live_chart import REPLAYED_COLOR, time_axis

# Distinct on white and told apart by most colour-blind readers (Tailwind 600s).
COLORS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2")
AXIS_OFFSET = 64  # px between right-hand axes: room for their labels and names
# The grid's right margin, 40 px: room for the time axis's zone name at its end.
_STATES = "\0states"  # the axis key of booleans (no unit can be this)


@dataclass(frozen=True)
class Drawn:
    """One channel to draw: its buckets, unit ("" if none) and whether it is a boolean."""

    channel: str
    buckets: list[Bucket]
    unit: str = ""
    boolean: bool = False


def options(
    drawn: list[Drawn], span: tuple[datetime, datetime] | None = None, zone: tzinfo = UTC
) -> dict[str, object]:
    """ECharts options for ``drawn`` over ``span`` (an empty chart with one plain axis when
    none): the time axis spans the whole range asked, so where samples are missing shows,
    and reads in ``zone`` (the page's), which names it."""
    keys: list[str] = []
    for item in drawn:
        key = _STATES if item.boolean else item.unit
        if key not in keys:
            keys.append(key)
    axes = [_axis(key, n, drawn) for n, key in enumerate(keys)] or [chart_words.value_axis("")]
    series: list[dict[str, object]] = []
    for n, item in enumerate(drawn):
        axis = keys.index(_STATES if item.boolean else item.unit)
        series.extend(_series(item, COLORS[n % len(COLORS)], axis))
    right = 40 + AXIS_OFFSET * max(0, len(axes) - 1)
    return {
        "animation": False,
        "useUTC": zone is UTC,  # the tooltip's own times: UTC, else the browser's
        "tooltip": {"trigger": "axis"},
        "legend": chart_words.legend(top=0),
        "grid": {"left": 64, "right": right, "top": 48, "bottom": 28},
        "xAxis": {**time_axis(zone), **_bounds(span)},
        "dataZoom": [{"type": "inside"}],  # wheel or pinch into a part of the range
        "yAxis": axes,
        "series": series,
    }


def _bounds(span: tuple[datetime, datetime] | None) -> dict[str, int]:
    if span is None:
        return {}
    start, end = span
    return {"min": int(start.timestamp() * 1000), "max": int(end.timestamp() * 1000)}


def _axis(key: str, n: int, drawn: list[Drawn]) -> dict[str, object]:
    place: dict[str, object] = {"position": "left" if n == 0 else "right"}
    if n > 1:
        place["offset"] = AXIS_OFFSET * (n - 1)
    if key == _STATES:
        return {**chart_words.state_axis(), **place}
    # No unit configured: the axis is named after its channels rather than left blank.
    name = key or ", ".join(d.channel for d in drawn if not d.boolean and not d.unit)
    return chart_words.value_axis(name, **place)


def _series(item: Drawn, color: str, axis: int) -> list[dict[str, object]]:
    at = [int(bucket.start.timestamp() * 1000) for bucket in item.buckets]
    mean = [[t, b.mean] for t, b in zip(at, item.buckets, strict=True)]
    lines = [_line(f"{item.channel} mean", mean, color, axis, width=2)]
    if item.boolean:
        lines[0].update(chart_words.state_series())
    else:
        for name, pick in (("min", lambda b: b.min), ("max", lambda b: b.max)):
            data = [[t, pick(b)] for t, b in zip(at, item.buckets, strict=True)]
            lines.append(_line(f"{item.channel} {name}", data, color, axis, width=1, opacity=0.4))
    replayed = [[t, b.mean] for t, b in zip(at, item.buckets, strict=True) if b.replayed]
    lines.append(
        {
            "name": f"{item.channel} replayed",
            "type": "scatter",
            "yAxisIndex": axis,
            "symbolSize": 5,
            "itemStyle": {"color": REPLAYED_COLOR},
            "data": replayed,
        }
    )
    return lines


def _line(
    name: str, data: list[list[float]], color: str, axis: int, *, width: int, opacity: float = 1
) -> dict[str, object]:
    return {
        "name": name,
        "type": "line",
        "yAxisIndex": axis,
        "showSymbol": False,
        "lineStyle": {"color": color, "width": width, "opacity": opacity},
        "itemStyle": {"color": color},
        "data": data,
    }
