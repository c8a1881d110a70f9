"""Minute rollups of newly stored samples, added up in Python, exactly.

Each database tells ``store`` which samples its transaction newly stored; they are rolled
up here and merged into the stored minutes in that same transaction (by an upsert on
PostgreSQL, read-and-write on SQLite). Python rather than SQL: the values are at hand, and
unpacking every sample's JSON in PostgreSQL cost more than storing it. Booleans count as
0 and 1; sums are exact whatever their size or scale (0.1 ten times is 1.0). A minute's
``last_ts`` is its latest sample's time and ``last_kind`` that value's type; on a tie of
times the sample rolled later wins.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, localcontext
from typing import Any

from core.db.types import ReadingValue
from core.protocol.telemetry import Batch

# Never rounds an addition: precision is a ceiling, the digits a sum needs are what it costs.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTE_MS = 60_000

SampleKey = tuple[str, str, int]  # device_id, stream, seq
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


def roll(batches: Iterable[Batch], stored: Iterable[SampleKey]) -> dict[MinuteKey, Minute]:
    """The rollups of the samples of ``batches`` whose key is in ``stored``, each once.

    The loop is the hot path of ingest: plain lists per minute, times as integer ms, and
    one exact decimal context around all of it rather than a call per addition.
    """
    new = set(stored)
    open_minutes: dict[tuple[str, str, int], list[Any]] = {}
    with localcontext(EXACT):
        for batch in batches:
            device_id, replayed = batch.device_id, int(batch.origin == "replay")
            for sample in batch.samples:
                key = (device_id, batch.stream, sample.seq)
                if key not in new:
                    continue
                new.discard(key)  # a seq twice in one call was stored once
                ts = sample.ts
                minute = ts - ts % MINUTE_MS
                for channel, value in sample.values.items():
                    at = (device_id, channel, minute)
                    acc = open_minutes.get(at)
                    if acc is None:  # low, high, sum, count, replayed, last ts, last value
                        open_minutes[at] = [value, value, value, 1, replayed, ts, value]
                        continue
                    if value < acc[0]:
                        acc[0] = value
                    if value > acc[1]:
                        acc[1] = value
                    acc[2] += value
                    acc[3] += 1
                    acc[4] += replayed
                    if ts >= acc[5]:
                        acc[5], acc[6] = ts, value
    return {
        (d, c, _time(m)): Minute(
            _exact(low), _exact(high), _exact(total), n, r, _time(ts), kind_of(last)
        )
        for (d, c, m), (low, high, total, n, r, ts, last) in open_minutes.items()
    }


def _exact(value: int | bool | Decimal) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(int(value))


def _time(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)
