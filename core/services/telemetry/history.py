"""Telemetry history for plots: a device's channels and time-bucketed downsampling.

Downsampling happens in SQL: the range is cut into equal buckets and the database returns
one aggregate row per non-empty bucket, from one of two sources (``plan``):

- **Raw samples** when a bucket is narrower than a minute and the range at most RAW_SPAN
  (two hours: 7,200 samples at 1 Hz): the channel's value is read out of each sample's
  readings, and the buckets are exactly ``bucket_width`` wide from ``start``.
- **Minute rollups** otherwise (a bucket of a minute or more, such as a day in 500 buckets,
  or a range longer than RAW_SPAN): a week at 1 Hz is 10,080 rollup rows per channel instead
  of 604,800 samples, so it reads about as fast as an hour. Rollups cannot split a minute,
  so the buckets are made of whole minutes: the width is rounded up to whole minutes (at
  least one) and the buckets are laid from the minute ``start`` falls in. When ``start`` or
  ``end`` falls inside a minute, that partial minute is read from the raw samples (at most a
  minute at each end), so a bucket never holds a sample outside [start, end); the first
  bucket then starts at ``start`` and the last ends at ``end``.

Both give the same buckets for the same samples: min of mins, max of maxes, the sum of sums
over the sum of counts (an exact mean on PostgreSQL, where sums are NUMERIC), and replayed
when any sample was. A rollup is written in the transaction that stores its samples, so it
is never behind them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    Interval,
    Numeric,
    Select,
    case,
    cast,
    func,
    literal,
    select,
    type_coerce,
    union_all,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute, aliased
from sqlalchemy.sql.selectable import ScalarSelect

from core.db.models import TelemetryRollup, TelemetrySample
from core.db.types import ReadingValue, UtcDateTime
from core.errors import InvalidError, NotFoundError
from core.protocol.telemetry import ValueType, is_channel
from core.services import devices
from core.services.actor import Actor

# Samples ``recent`` reads at most: a live chart's ring (20 min at 1 Hz, 2 min at 10 Hz),
# so filling a page never costs more than the hub holds for it.
RECENT_SAMPLES = 1200
MAX_BUCKETS = 2000  # a plot is at most a few thousand pixels wide; more rows show nothing more
ROLLUP = timedelta(minutes=1)  # the span of one rollup row
ROLLUPS_FROM = ROLLUP  # buckets this wide or wider read rollups; narrower ones cannot
# The longest range read raw: at 1 Hz twice an hour's samples, so no range costs much more
# than an hour does. Longer ranges get one-minute buckets at least, whatever was asked.
RAW_SPAN = timedelta(hours=2)
# Plotted values are clamped to ±1e300: finite in JSON, and SQLite's sums stay doubles.
FLOAT_LIMIT = Decimal("1e300")
_MICROSECOND = timedelta(microseconds=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class HistoryError(InvalidError, ValueError):
    """A history or export request that cannot be answered as asked (range or channel)."""


@dataclass(frozen=True)
class ChannelInfo:
    """A channel of a device: the type of its latest value and when that was sampled."""

    channel: str
    type: ValueType
    latest: datetime


@dataclass(frozen=True)
class Bucket:
    """One non-empty time bucket of a channel: [start, end) and its samples' aggregates."""

    start: datetime
    end: datetime
    count: int
    min: float
    max: float
    mean: float
    replayed: bool  # at least one sample in the bucket arrived by replay


@dataclass(frozen=True)
class Plan:
    """How a range is cut: bucket ``width`` from ``origin``; rollups for [whole_from, whole_to).

    Without rollups ``whole_from == whole_to`` and every sample is read raw.
    """

    origin: datetime
    width: timedelta
    whole_from: datetime
    whole_to: datetime

    @property
    def rollups(self) -> bool:
        """Whether whole minutes are read from the rollups."""
        return self.whole_from < self.whole_to


async def require_device(session: AsyncSession, device_id: str) -> None:
    """NotFoundError unless the device exists (telemetry itself has no foreign key)."""
    if not await devices.exists(session, device_id):
        msg = f"no device with id '{device_id}'"
        raise NotFoundError(msg)


def check_range(start: datetime, end: datetime) -> None:
    """HistoryError unless ``start`` < ``end`` and both carry a timezone."""
    for name, moment in (("start", start), ("end", end)):
        if moment.tzinfo is None:
            msg = f"{name} needs a timezone, such as 2025-01-01T00:00:00Z"
            raise HistoryError(msg, field=name)
    if start >= end:
        msg = f"start ({start.isoformat()}) must be before end ({end.isoformat()})"
        raise HistoryError(msg, field="start")


def check_channel(channel: str) -> None:
    """HistoryError unless ``channel`` is a name a channel can have."""
    if not is_channel(channel):
        msg = f"channel name must match [a-z0-9_.-]{{1,64}}: {channel!r}"
        raise HistoryError(msg, field="channel")


async def channels(session: AsyncSession, *, actor: Actor, device_id: str) -> list[ChannelInfo]:
    """The device's channels by name, each with its latest value's type and time."""
    actor.require("telemetry:read")
    await require_device(session, device_id)
    # A skip scan over the rollups' key (device_id, channel, minute): one index probe per
    # channel, where GROUP BY channel would read every minute the device ever sent.
    rollup = TelemetryRollup
    names = (
        select(func.min(rollup.channel).label("channel"))
        .where(rollup.device_id == device_id)
        .cte("names", recursive=True)
    )
    row = aliased(TelemetryRollup)
    following = (
        select(func.min(row.channel))
        .where(row.device_id == device_id, row.channel > names.c.channel)
        .scalar_subquery()
    )
    names = names.union_all(select(following).where(names.c.channel.is_not(None)))

    def latest(column: QueryableAttribute[Any]) -> ScalarSelect[Any]:
        """``column`` of the channel's latest minute: one probe at the end of its key range."""
        return (
            select(column)
            .where(rollup.device_id == device_id, rollup.channel == names.c.channel)
            .order_by(rollup.minute.desc())
            .limit(1)
            .scalar_subquery()
        )

    query = (
        select(names.c.channel, latest(rollup.last_kind), latest(rollup.last_ts))
        .where(names.c.channel.is_not(None))
        .order_by(names.c.channel)
    )
    return [
        ChannelInfo(channel, kind, ts) for channel, kind, ts in (await session.execute(query)).all()
    ]


@dataclass(frozen=True)
class StoredSample:
    """A stored sample as a live chart takes it: when, its values, and whether replayed."""

    ts_ms: int
    values: dict[str, ReadingValue]
    replayed: bool


async def recent(
    session: AsyncSession, *, actor: Actor, device_id: str, since: datetime
) -> list[StoredSample]:
    """The device's samples from ``since`` on, oldest first (the newest RECENT_SAMPLES).

    What a live chart shows of the time before its page opened: the hub forgets on a
    restart, the database does not.
    """
    actor.require("telemetry:read")
    check_range(since, since + _MICROSECOND)
    sample = TelemetrySample
    query = (
        select(sample.ts, sample.readings, sample.replayed)
        .where(sample.device_id == device_id, sample.ts >= since)
        .order_by(sample.ts.desc())
        .limit(RECENT_SAMPLES)
    )
    rows = (await session.execute(query)).all()
    return [
        StoredSample((ts - _EPOCH) // timedelta(milliseconds=1), readings, bool(replayed))
        for ts, readings, replayed in reversed(rows)
    ]


def bucket_width(start: datetime, end: datetime, buckets: int) -> timedelta:
    """The width of each of ``buckets`` equal buckets covering [start, end), whole µs."""
    span = (end - start) // _MICROSECOND
    return -(-span // max(1, buckets)) * _MICROSECOND  # rounded up: the buckets cover the range


def _floor_minute(moment: datetime) -> datetime:
    return _EPOCH + (moment - _EPOCH) // ROLLUP * ROLLUP


def plan(start: datetime, end: datetime, buckets: int) -> Plan:
    """Raw buckets under a minute over at most RAW_SPAN; else whole minutes from rollups."""
    width = bucket_width(start, end, buckets)
    if width < ROLLUPS_FROM and end - start <= RAW_SPAN:
        return Plan(start, width, start, start)
    origin = _floor_minute(start)
    whole_from = origin if origin == start else origin + ROLLUP
    # Whole minutes, and few enough that the buckets laid from ``origin`` are at most asked.
    minutes = -(-bucket_width(origin, end, buckets) // ROLLUP)
    return Plan(origin, minutes * ROLLUP, whole_from, _floor_minute(end))


def _bucket_key(
    dialect: str, at: ColumnElement[Any] | QueryableAttribute[Any], plan: Plan
) -> ColumnElement[Any]:
    """Which bucket time ``at`` falls in, per row, in the cheapest exact form each database has."""
    if dialect == "sqlite":
        # julianday() counts whole milliseconds (as every protocol time is), so rounding its
        # double gives them back exactly; strftime('%s') and the digits took twice as long.
        days = func.julianday(at) - 2440587.5  # the Julian day of the epoch
        epoch_ms = cast(func.round(days * 86_400_000), BigInteger)
        origin_us = (plan.origin - _EPOCH) // _MICROSECOND
        return (epoch_ms * 1000 - origin_us) // (plan.width // _MICROSECOND)  # the bucket's number
    # date_bin (PostgreSQL 14+): the bucket's start, in integer time arithmetic; extract(epoch),
    # a NUMERIC, made a week's query three times slower.
    return func.date_bin(literal(plan.width, Interval()), at, literal(plan.origin, UtcDateTime()))


def _real(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """SQLite: a value as a clamped double (decimals are text, where '10.25' < '9.5')."""
    limit = float(FLOAT_LIMIT)
    return func.max(func.min(cast(value, Float), limit), -limit)


def _raw(
    dialect: str, device_id: str, channel: str, start: datetime, end: datetime, plan: Plan
) -> Select[Any]:
    """The buckets of ``channel``'s samples in [start, end), one row each."""
    sample = TelemetrySample
    if dialect == "sqlite":
        read = func.json_extract(sample.readings, f'$."{channel}"')  # true and false read 1, 0
    else:
        # Decimals are JSON strings, integers numbers, booleans true/false: ->> spells each.
        read = type_coerce(sample.readings, JSONB)[channel].astext
    # OFFSET 0 keeps both databases from merging this into the aggregates above, which
    # would look the channel up in each sample's readings once per aggregate: 2-3x slower.
    samples = (
        select(
            _bucket_key(dialect, sample.ts, plan).label("key"),
            read.label("found"),
            case((sample.replayed, 1), else_=0).label("replayed"),
        )
        .where(sample.device_id == device_id, sample.ts >= start, sample.ts < end)
        .offset(0)
        .subquery()
    )
    found = samples.c.found
    if dialect == "sqlite":
        value = _real(found)
    else:
        value = case((found == "true", 1), (found == "false", 0), else_=cast(found, Numeric))
    return (
        select(
            samples.c.key,
            func.min(value).label("low"),
            func.max(value).label("high"),
            func.sum(value).label("total"),
            func.count().label("count"),
            func.max(samples.c.replayed).label("replayed"),
        )
        .where(found.is_not(None))
        .group_by(samples.c.key)
    )


def _raw_ranges(start: datetime, end: datetime, plan: Plan) -> list[tuple[datetime, datetime]]:
    """What is read from raw samples: all of [start, end), or the partial minutes at its ends."""
    if not plan.rollups:
        return [(start, end)]
    return [(a, b) for a, b in ((start, plan.whole_from), (plan.whole_to, end)) if a < b]


def _rolled(dialect: str, device_id: str, channel: str, plan: Plan) -> Select[Any]:
    """The rollup minutes of ``channel`` in [whole_from, whole_to), one row each."""
    rollup = TelemetryRollup

    def number(column: QueryableAttribute[Any]) -> ColumnElement[Any]:
        return _real(column.expression) if dialect == "sqlite" else column.expression

    return select(
        _bucket_key(dialect, rollup.minute, plan).label("key"),
        number(rollup.min).label("low"),
        number(rollup.max).label("high"),
        number(rollup.sum).label("total"),
        rollup.count.label("count"),
        rollup.replayed.label("replayed"),
    ).where(
        rollup.device_id == device_id,
        rollup.channel == channel,
        rollup.minute >= plan.whole_from,
        rollup.minute < plan.whole_to,
    )


def _finite(value: float | Decimal) -> float:
    limit = float(FLOAT_LIMIT)
    return max(-limit, min(limit, float(value)))


async def downsample(
    session: AsyncSession,
    *,
    actor: Actor,
    device_id: str,
    channel: str,
    start: datetime,
    end: datetime,
    buckets: int,
) -> list[Bucket]:
    """``channel`` over [start, end) in equal buckets (at most MAX_BUCKETS), empty ones left out.

    Buckets of a minute or more are whole minutes, so there may be fewer than asked.
    """
    actor.require("telemetry:read")
    check_range(start, end)
    check_channel(channel)
    if buckets < 1:
        msg = f"buckets must be at least 1: {buckets}"
        raise HistoryError(msg, field="buckets")
    await require_device(session, device_id)
    cut = plan(start, end, min(buckets, MAX_BUCKETS))
    dialect = session.get_bind().dialect.name
    parts = [_raw(dialect, device_id, channel, a, b, cut) for a, b in _raw_ranges(start, end, cut)]
    if cut.rollups:
        parts.append(_rolled(dialect, device_id, channel, cut))
    rows = (union_all(*parts) if len(parts) > 1 else parts[0]).subquery()
    # Grouped again outside the parts: a bucket may hold a partial minute of samples and
    # whole minutes of rollups. (Grouped by a subquery's column, not by an expression:
    # PostgreSQL would not match a GROUP BY expression whose parameters are numbered apart.)
    query = (
        select(
            rows.c.key,
            func.sum(rows.c.count),
            func.max(rows.c.replayed),
            func.min(rows.c.low),
            func.max(rows.c.high),
            func.sum(rows.c.total),
        )
        .group_by(rows.c.key)
        .order_by(rows.c.key)
    )
    found = []
    for key, count, replayed, low, high, total in (await session.execute(query)).all():
        # SQLite's key is the bucket's number, PostgreSQL's (date_bin) already its start.
        bucket_start = cut.origin + cut.width * key if isinstance(key, int) else key
        count = int(count)
        bucket = Bucket(
            start=max(bucket_start, start),
            end=min(bucket_start + cut.width, end),
            count=count,
            min=_finite(low),
            max=_finite(high),
            # Exact where the database summed exactly (PostgreSQL), so the mean is too.
            mean=_finite(Decimal(total) / count),
            replayed=bool(replayed),
        )
        found.append(bucket)
    return found
