"""A report's values as people read them, the same on the page and in the PDF.

Numbers carry their column's unit (``3,600 s``, ``99.5 %``), decimals stay exact, times read
in one zone with the zone named (``2026-11-30 15:02:11 CET``), and nothing is a dash. The
CSV and the JSON keep the plain values (``reports.plain``); this is for eyes only.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, tzinfo
from decimal import Decimal

from core.services.reports import Column, Value

NOTHING = "—"  # an open period's end, a value not known: a dash reads as "none", not as 0
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # offline periods are seconds long: the second matters


def zone_name(zone: tzinfo) -> str:
    """The zone's IANA name (``Europe/Berlin``), or ``UTC``."""
    return str(getattr(zone, "key", None) or "UTC")


def moment(value: datetime, zone: tzinfo) -> str:
    """``2026-11-30 15:02:11 CET``: the time in ``zone``, its abbreviation after it."""
    local = value.astimezone(zone)
    return f"{local:{TIME_FORMAT}} {local.tzname() or 'UTC'}"


def number(value: int | Decimal, unit: str) -> str:
    """``1,289 samples``, ``99.50 %``: grouped, exact, the unit after a space."""
    text = f"{value:,}" if isinstance(value, int) else f"{value:,f}"
    return f"{text} {unit}" if unit else text


def cell(value: Value, column: Column, zone: tzinfo) -> str:
    """One value of ``column`` in words, its times in ``zone``."""
    if value is None:
        return NOTHING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | Decimal):
        return number(value, column.unit)
    if isinstance(value, datetime):
        return moment(value, zone)
    if isinstance(value, date):
        return value.isoformat()
    return value


def heading(column: Column) -> str:
    """``Duration (s)``: the column's heading with its unit, if it has one."""
    return f"{column.heading} ({column.unit})" if column.unit else column.heading


def asked(filters: Mapping[str, str]) -> str:
    """What was asked, in one line: ``device: bench-01 · from: … · to: …``; or ``everything``."""
    return " · ".join(f"{key}: {value}" for key, value in filters.items()) or "everything"
