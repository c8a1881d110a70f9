"""Telemetry history for plots: a device's channels and time-bucketed downsampling.

Downsampling happens in SQL: the range is cut into equal buckets and the database returns
one aggregate row per non-empty bucket, so a week comes back in as many rows as a minute.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Float, Interval, case, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute, aliased
from sqlalchemy.sql.selectable import ScalarSelect

from core.db.models import Telemetry
from core.db.types import UtcDateTime
from core.errors import InvalidError, NotFoundError
from core.protocol.telemetry import ValueType, is_channel
from core.services import devices
from core.services.actor import Actor

MAX_BUCKETS = 2000  # a plot is at most a few thousand pixels wide; more rows show nothing more
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


def _value_type() -> ColumnElement[str]:
    return case(
        (Telemetry.value_int.is_not(None), "integer"),
        (Telemetry.value_dec.is_not(None), "decimal"),
        else_="boolean",
    )


async def channels(session: AsyncSession, *, actor: Actor, device_id: str) -> list[ChannelInfo]:
    """The device's channels by name, each with its latest value's type and time."""
    actor.require("telemetry:read")
    await require_device(session, device_id)
    # A skip scan over the (device_id, channel, ts) index: one index probe per channel,
    # where GROUP BY channel would read every sample the device ever sent.
    names = (
        select(func.min(Telemetry.channel).label("channel"))
        .where(Telemetry.device_id == device_id)
        .cte("names", recursive=True)
    )
    row = aliased(Telemetry)
    following = (
        select(func.min(row.channel))
        .where(row.device_id == device_id, row.channel > names.c.channel)
        .scalar_subquery()
    )
    names = names.union_all(select(following).where(names.c.channel.is_not(None)))

    def latest(column: ColumnElement[Any] | QueryableAttribute[Any]) -> ScalarSelect[Any]:
        """``column`` of the channel's newest sample: one probe at the end of its index range."""
        return (
            select(column)
            .where(Telemetry.device_id == device_id, Telemetry.channel == names.c.channel)
            .order_by(Telemetry.ts.desc())
            .limit(1)
            .scalar_subquery()
        )

    query = (
        select(names.c.channel, latest(_value_type()), latest(Telemetry.ts))
        .where(names.c.channel.is_not(None))
        .order_by(names.c.channel)
    )
    return [
        ChannelInfo(channel, kind, ts) for channel, kind, ts in (await session.execute(query)).all()
    ]


def bucket_width(start: datetime, end: datetime, buckets: int) -> timedelta:
    """The width of each of ``buckets`` equal buckets covering [start, end), whole µs."""
    span = (end - start) // _MICROSECOND
    return -(-span // max(1, buckets)) * _MICROSECOND  # rounded up: the buckets cover the range


def _bucket_key(dialect: str, start: datetime, width: timedelta) -> ColumnElement[Any]:
    """Which bucket a sample falls in, per row, in the cheapest exact form each database has."""
    if dialect == "sqlite":
        # julianday() counts whole milliseconds (as every protocol time is), so rounding its
        # double gives them back exactly; strftime('%s') and the digits took twice as long.
        days = func.julianday(Telemetry.ts) - 2440587.5  # the Julian day of the epoch
        epoch_ms = cast(func.round(days * 86_400_000), BigInteger)
        origin_us = (start - _EPOCH) // _MICROSECOND
        return (epoch_ms * 1000 - origin_us) // (width // _MICROSECOND)  # the bucket's number
    # date_bin (PostgreSQL 14+): the bucket's start, in integer time arithmetic; extract(epoch),
    # a NUMERIC, made a week's query three times slower.
    return func.date_bin(literal(width, Interval()), Telemetry.ts, literal(start, UtcDateTime()))


def _numbers(dialect: str) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
    """``value_int`` and ``value_dec`` as min, max and sum should see them on each database."""
    if dialect == "sqlite":
        # REAL: decimals are text (where '10.25' < '9.5'), an integer sum() fails past int64,
        # and a decimal beyond a double would read as ±Inf.
        limit = float(FLOAT_LIMIT)
        decimal = func.max(func.min(cast(Telemetry.value_dec, Float), limit), -limit)
        return cast(Telemetry.value_int, Float), decimal
    # Native and exact (sum(bigint) is NUMERIC); a cast per row to double costs more than the
    # aggregates, since NUMERIC → double goes through text.
    return Telemetry.value_int.expression, Telemetry.value_dec.expression


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
    """``channel`` over [start, end) in equal buckets (at most MAX_BUCKETS), empty ones left out."""
    actor.require("telemetry:read")
    check_range(start, end)
    check_channel(channel)
    if buckets < 1:
        msg = f"buckets must be at least 1: {buckets}"
        raise HistoryError(msg, field="buckets")
    await require_device(session, device_id)
    width = bucket_width(start, end, min(buckets, MAX_BUCKETS))
    dialect = session.get_bind().dialect.name
    ints, decimals = _numbers(dialect)
    flags = case((Telemetry.value_bool.is_(True), 1), (Telemetry.value_bool.is_(False), 0))
    samples = (
        select(
            _bucket_key(dialect, start, width).label("key"),
            ints.label("ints"),
            decimals.label("decimals"),
            flags.label("flags"),
            case((Telemetry.replayed, 1), else_=0).label("replayed"),
        )
        .where(
            Telemetry.device_id == device_id,
            Telemetry.channel == channel,
            Telemetry.ts >= start,
            Telemetry.ts < end,
        )
        .subquery()
    )
    # Each value column aggregated apart, so none is converted per row (a channel has one
    # type, but its type may have changed within the range). Grouped outside the subquery:
    # PostgreSQL would not match a GROUP BY expression whose parameters are numbered apart.
    columns = (samples.c.ints, samples.c.decimals, samples.c.flags)
    query = (
        select(
            samples.c.key,
            func.count(),
            func.max(samples.c.replayed),
            *(aggregate(c) for c in columns for aggregate in (func.min, func.max, func.sum)),
        )
        .group_by(samples.c.key)
        .order_by(samples.c.key)
    )
    found = []
    for key, count, replayed, *aggregates in (await session.execute(query)).all():
        # SQLite's key is the bucket's number, PostgreSQL's (date_bin) already its start.
        bucket_start = start + width * key if isinstance(key, int) else key
        lows = [a for a in aggregates[0::3] if a is not None]
        highs = [a for a in aggregates[1::3] if a is not None]
        # Exact where the database summed exactly (PostgreSQL), so the mean is too.
        total = sum((Decimal(a) for a in aggregates[2::3] if a is not None), Decimal(0))
        bucket = Bucket(
            start=bucket_start,
            end=min(bucket_start + width, end),
            count=count,
            min=_finite(min(lows)),
            max=_finite(max(highs)),
            mean=_finite(total / count),
            replayed=bool(replayed),
        )
        found.append(bucket)
    return found
