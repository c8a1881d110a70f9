"""Each report's chart, drawn from the same Table its rows come from (ECharts options).

Offline events: offline time per device (bars). Availability: % online per day, a line per
device, 0 to 100 %. Configuration changes: versions per day, stacked by outcome. Audit log:
entries per day, stacked by action family. Days are the reader's (in their zone); every
value axis is titled with its unit.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any

from core.services.reports import Table, Value

MINUTE, HOUR = 60, 3600
AXIS_GAP = 48  # room between a value axis and its title, past numbers like "1,440"


def _label(row: dict[str, Value] | Any) -> str:
    """``Kiln 7 (kiln-7)`` if the device has a name, else its id."""
    name, device = row.get("device_name"), str(row.get("device_id"))
    return f"{name} ({device})" if name and name != device else device


def _day(value: Value, zone: tzinfo) -> str:
    if isinstance(value, datetime):
        return value.astimezone(zone).date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _base(title: str, unit_axis: str, categories: list[str], **y: Any) -> dict[str, Any]:
    return {
        "animation": False,  # drawn at once: a screenshot or a print never catches it half-grown
        "title": {"text": title, "left": "center", "textStyle": {"fontSize": 14}},
        "tooltip": {"trigger": "axis"},
        "legend": {"bottom": 0, "type": "scroll"},
        "grid": {"left": 72, "right": 24, "top": 48, "bottom": 64, "containLabel": False},
        "xAxis": {"type": "category", "data": categories, "axisLabel": {"hideOverlap": True}},
        "yAxis": {
            "type": "value",
            "name": unit_axis,
            "nameLocation": "middle",
            "nameGap": AXIS_GAP,
            "minInterval": 1,
            **y,
        },
        "series": [],
    }


def _duration_unit(longest_s: float) -> tuple[str, int]:
    """Seconds read as s, min or h, whichever keeps the longest bar a small number."""
    if longest_s >= 2 * HOUR:
        return "h", HOUR
    if longest_s >= 2 * MINUTE:
        return "min", MINUTE
    return "s", 1


def offline_chart(table: Table, zone: tzinfo) -> dict[str, Any]:
    """Offline time per device over the range, as bars."""
    total: dict[str, float] = defaultdict(float)
    for row in table.rows:
        seconds = row["duration_s"]
        if isinstance(seconds, int | Decimal):
            total[_label(row)] += float(seconds)
    unit, size = _duration_unit(max(total.values(), default=0))
    devices = sorted(total)
    options = _base("Offline time per device", f"Offline ({unit})", devices)
    options["yAxis"].pop("minInterval")
    options["series"] = [
        {
            "name": f"Offline ({unit})",
            "type": "bar",
            "data": [round(total[d] / size, 2) for d in devices],
            "label": {"show": True, "position": "top", "formatter": f"{{c}} {unit}"},
        }
    ]
    return options


def availability_chart(table: Table, zone: tzinfo) -> dict[str, Any]:
    """Each device's % online per day, a line each, on a 0 to 100 % axis."""
    days = sorted({_day(row["day"], zone) for row in table.rows})
    shares: dict[str, dict[str, float | None]] = defaultdict(dict)
    for row in table.rows:
        share = row["online_pct"]
        shares[_label(row)][_day(row["day"], zone)] = (
            float(share) if isinstance(share, int | Decimal) else None
        )
    options = _base("Online share per day", "Online (%)", days, min=0, max=100)
    options["yAxis"]["axisLabel"] = {"formatter": "{value} %"}
    options["series"] = [
        {
            "name": device,
            "type": "line",
            "connectNulls": False,
            "symbolSize": 7,
            "data": [by_day.get(day) for day in days],
        }
        for device, by_day in sorted(shares.items())
    ]
    return options


def _stacked(
    title: str, axis: str, counted: Iterable[tuple[str, str]], words: dict[str, str] | None = None
) -> dict[str, Any]:
    """Bars per day stacked by kind, from (day, kind) pairs."""
    counts = Counter(counted)
    days = sorted({day for day, _ in counts})
    kinds = sorted({kind for _, kind in counts})
    options = _base(title, axis, days)
    options["series"] = [
        {
            "name": (words or {}).get(kind, kind),
            "type": "bar",
            "stack": "all",
            "data": [counts.get((day, kind), 0) for day in days],
        }
        for kind in kinds
    ]
    return options


def config_chart(table: Table, zone: tzinfo) -> dict[str, Any]:
    """Configuration versions per day of their making, stacked by what the station said."""
    pairs = [
        (_day(row["changed_at"], zone), str(row["outcome"] or "no answer yet"))
        for row in table.rows
    ]
    return _stacked("Configuration versions per day", "Versions (count)", pairs)


def audit_chart(table: Table, zone: tzinfo) -> dict[str, Any]:
    """Audit entries per day, stacked by action family (``device``, ``user``, ``auth``…)."""
    pairs = [(_day(row["at"], zone), str(row["action"]).split(".", 1)[0]) for row in table.rows]
    return _stacked("Audit entries per day", "Entries (count)", pairs)


CHARTS = {
    "offline-events": offline_chart,
    "availability": availability_chart,
    "config-changes": config_chart,
    "audit": audit_chart,
}


def chart(table: Table, zone: tzinfo) -> dict[str, Any]:
    """The chart of ``table``, by the report's name."""
    return CHARTS[table.name](table, zone)
