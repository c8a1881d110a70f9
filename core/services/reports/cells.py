"""A report's values as people read them, the same on the page and in the PDF.

Numbers carry their column's unit (``3,600 s``, ``99.5 %``), decimals stay exact, times read
in one zone with the zone named (``2026-11-30 15:02:11 CET``), and nothing is a dash. The
CSV and the JSON keep the plain values (``reports.plain``); this is for eyes only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import ROUND_HALF_UP, Decimal

from core.services.reports import Column, Value

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

SHOWN_PLACES = Decimal("0.001")  # a duration still running is exact to the µs: ms is plenty to read
NOTHING = "—"  # an open period's end, a value not known: a dash reads as "none", not as 0
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # offline periods are seconds long: the second matters
# What each filter key reads as: the JSON keeps the keys (clients match on them), people the words.
FILTER_HEADINGS = {
    "device": "Device",
    "actor": "Actor",
    "action": "Action",
    "target_type": "Target kind",
    "target_id": "Target",
    "from": "From",
    "to": "To",
}
# A filter's "any" in words where "any" reads wrong: anyone acts, not "any".
FILTER_ANY = {"actor": "anyone"}


def device_label(device_id: str, name: str | None) -> str:
    """``Kiln 7 (kiln-7)``; just the id when the device has no name or is named by its id."""
    return f"{name} ({device_id})" if name and name.strip() != device_id else device_id


def zone_name(zone: tzinfo) -> str:
    """The zone's IANA name (``Europe/Berlin``), or ``UTC``."""
    return str(getattr(zone, "key", None) or "UTC")


def moment(value: datetime, zone: tzinfo) -> str:
    """``2026-11-30 15:02:11 CET``: the time in ``zone``, its abbreviation after it."""
    local = value.astimezone(zone)
    return f"{local:{TIME_FORMAT}} {local.tzname() or 'UTC'}"


def number(value: int | Decimal, unit: str) -> str:
    """``1,289 samples``, ``99.50 %``: grouped, exact to the millisecond's place, the unit
    after a space."""
    if isinstance(value, Decimal) and value.is_finite() and value != value.quantize(SHOWN_PLACES):
        value = value.quantize(SHOWN_PLACES, ROUND_HALF_UP)
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


@dataclass(frozen=True)
class Shown:
    """A column as people read it: ``device_id`` with ``device_name`` folded in beside it."""

    column: Column
    name_key: str | None = None  # the column naming this one's values, shown with them

    def text(self, row: Mapping[str, Value], zone: tzinfo) -> str:
        """``Kiln 7 (kiln-7)``; the name alone for an id nobody reads (a UUID); else the id."""
        raw = row[self.column.key]
        value = cell(raw, self.column, zone)
        name = row[self.name_key] if self.name_key else None
        if not name or not isinstance(name, str) or name == value:
            return value
        if value in name or "(" in name or (isinstance(raw, str) and UUID.fullmatch(raw)):
            return name  # it names its id already ("Kiln 7 (kiln-7)"), or the id says nothing
        return f"{name} ({value})"


def shown(columns: Sequence[Column], rows: Sequence[Mapping[str, Value]] = ()) -> list[Shown]:
    """The columns people read: each ``x_name`` folded into its ``x_id`` (or ``x``), and none
    that is empty in every row (a note nobody wrote); the CSV keeps them all."""
    keys = {c.key for c in columns}
    names = {
        c.key: f"{c.key.removesuffix('_id')}_name"
        for c in columns
        if f"{c.key.removesuffix('_id')}_name" in keys and not c.key.endswith("_name")
    }
    folded = set(names.values())
    empty = {c.key for c in columns if rows and all(row[c.key] in (None, "") for row in rows)}
    return [Shown(c, names.get(c.key)) for c in columns if c.key not in folded | empty]


def heading(column: Column) -> str:
    """``Duration (s)``: the column's heading with its unit, if it has one."""
    return f"{column.heading} ({column.unit})" if column.unit else column.heading


def headings(columns: Sequence[Shown]) -> list[str]:
    """Each column's heading; with its unit where two share one (``Online (s)``, ``Online (%)``)."""
    names = [s.column.heading for s in columns]
    return [
        heading(s.column) if names.count(name) > 1 else name
        for s, name in zip(columns, names, strict=True)
    ]


def _filter(value: str, zone: tzinfo | None) -> str:
    """A filter's value; a time (the services write UTC ISO 8601) read in ``zone``."""
    if zone is None:
        return value
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return value
    return moment(when, zone) if when.tzinfo is not None else value


def asked(filters: Mapping[str, str], zone: tzinfo | None = None) -> str:
    """What was asked, in one line: ``Device: bench-01 · From: … · To: …``; or ``everything``.

    Keys read as ``FILTER_HEADINGS`` words them; given a ``zone``, the times asked read in it,
    as every other time does.
    """
    shown = (
        f"{FILTER_HEADINGS.get(key, key)}: "
        f"{FILTER_ANY.get(key, value) if value == 'any' else _filter(value, zone)}"
        for key, value in filters.items()
    )
    return " · ".join(shown) or "everything"
