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

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal, localcontext
from operator import itemgetter
from typing import NamedTuple

from core.db.types import ReadingValue
from core.protocol.telemetry import Batch

# Never rounds an addition: precision is a ceiling, the digits a sum needs are what it costs.
EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTE_MS = 60_000

SampleKey = tuple[str, str, int]  # device_id, stream, seq
MinuteKey = tuple[str, str, datetime]  # device_id, channel, minute start (UTC)


class Minute(NamedTuple):
    """One channel of one device over one minute (a tuple: ingest makes many)."""

    min: Decimal
    max: Decimal
    sum: Decimal
    count: int  # type: ignore[assignment]  # the column, shadowing tuple.count (unused)
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

    The hot path of ingest, so the work per value is what C does: samples are grouped by
    device and minute, and each channel's values are one list for min, max and sum, under
    one exact decimal context.
    """
    new = set(stored)
    groups: dict[tuple[str, int], list[_Member]] = defaultdict(list)
    for batch in batches:
        replayed = batch.origin == "replay"
        for sample in batch.samples:
            key = (batch.device_id, batch.stream, sample.seq)
            if key in new:
                new.discard(key)  # a seq twice in one call was stored once
                minute = sample.ts - sample.ts % MINUTE_MS
                groups[(batch.device_id, minute)].append((sample.ts, sample.values, replayed))
    rolled: dict[MinuteKey, Minute] = {}
    with localcontext(EXACT):
        for (device_id, minute), members in groups.items():
            members.sort(key=itemgetter(0))  # stable: on a tie of times, arrival order
            start = _time(minute)
            for channel, rollup in _channels(members):
                rolled[(device_id, channel, start)] = rollup
    return rolled


_Member = tuple[int, Mapping[str, ReadingValue], bool]  # ts, values, replayed


def _channels(members: list[_Member]) -> Iterator[tuple[str, Minute]]:
    """Each channel's rollup over one minute's samples of one device, in time order."""
    channels: set[str] = set()
    for _, values, _ in members:
        channels.update(values)
    replays = sum(replayed for *_, replayed in members)
    for channel in channels:
        got = [values[channel] for _, values, _ in members if channel in values]
        if replays in (0, len(members)):
            replayed = len(got) if replays else 0
        else:
            replayed = sum(r for _, values, r in members if r and channel in values)
        last_ts, last = next((ts, v[channel]) for ts, v, _ in reversed(members) if channel in v)
        yield (
            channel,
            Minute(
                _exact(min(got)),
                _exact(max(got)),
                _exact(sum(got)),
                len(got),
                replayed,
                _time(last_ts),
                kind_of(last),
            ),
        )


def _exact(value: int | bool | Decimal) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(int(value))


def _time(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)
