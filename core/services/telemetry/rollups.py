"""Minute rollups computed in Python, exactly: SQLite's side of keeping them.

PostgreSQL rolls samples up in SQL (``postgres``); SQLite cannot add decimals exactly (its
arithmetic is floating point), so its writer rolls the newly stored samples up here and
merges them into the stored minutes. Booleans count as 0 and 1; sums are exact whatever
their size or scale (0.1 ten times is 1.0). A minute's ``last_ts`` is its latest sample's
time and ``last_kind`` that value's type; on a tie the sample rolled later wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal

from core.db.types import ReadingValue

# Never rounds an addition: precision is a ceiling, the digits a sum needs are what it costs.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)

MinuteKey = tuple[str, str, datetime]  # device_id, channel, minute start (UTC)


@dataclass(frozen=True)
class Minute:
    """One channel of one device over one minute."""

    min: Decimal
    max: Decimal
    sum: Decimal
    count: int
    replayed: int
    last_ts: datetime
    last_kind: str


def minute_of(ts: datetime) -> datetime:
    """The start of the minute ``ts`` falls in."""
    return ts.replace(second=0, microsecond=0)


def kind_of(value: ReadingValue) -> str:
    """A value's type as a rollup records it."""
    if isinstance(value, bool):
        return "boolean"
    return "decimal" if isinstance(value, Decimal) else "integer"


def merge(old: Minute, new: Minute) -> Minute:
    """Two rollups of the same minute as one."""
    later = new if new.last_ts >= old.last_ts else old
    return Minute(
        min(old.min, new.min),
        max(old.max, new.max),
        EXACT.add(old.sum, new.sum),
        old.count + new.count,
        old.replayed + new.replayed,
        later.last_ts,
        later.last_kind,
    )


def roll(
    samples: Iterable[tuple[str, datetime, dict[str, ReadingValue], bool]],
) -> dict[MinuteKey, Minute]:
    """The rollups of ``samples`` (device_id, ts, readings, replayed) by channel and minute."""
    minutes: dict[MinuteKey, Minute] = {}
    for device_id, ts, readings, replayed in samples:
        minute = minute_of(ts)
        for channel, value in readings.items():
            number = value if isinstance(value, Decimal) else Decimal(int(value))
            one = Minute(number, number, number, 1, int(replayed), ts, kind_of(value))
            key = (device_id, channel, minute)
            minutes[key] = merge(minutes[key], one) if key in minutes else one
    return minutes
