"""History from minute rollups and from raw samples: the same buckets, whichever is read.

Every test stores through the real store (which fills the rollups in its transaction) and
checks the buckets against the samples themselves, on both paths where they can meet.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import delete

from core.db.engine import Database
from core.db.models import TelemetrySample
from core.protocol.telemetry import Batch, Value
from core.services.telemetry import history, store
from core.services.telemetry.history import Bucket
from tests.core.history_data import ADMIN, DEVICE, T0, add_device, batch, samples

MINUTE = timedelta(minutes=1)
Point = tuple[datetime, Value, bool]  # when, value, replayed


@pytest.fixture
async def db(database: Database) -> Database:
    """The test database with the device registered."""
    await add_device(database)
    return database


def _raw_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """History reads raw samples whatever the bucket width and the range."""
    monkeypatch.setattr(history, "ROLLUPS_FROM", timedelta.max)
    monkeypatch.setattr(history, "RAW_SPAN", timedelta.max)


def _points(batches: Iterable[Batch], channel: str) -> list[Point]:
    return [
        (store.timestamp(s.ts), s.values[channel], b.origin == "replay")
        for b in batches
        for s in b.samples
        if channel in s.values
    ]


async def _stored(database: Database, *batches: Batch) -> list[Batch]:
    await store.store(database, list(batches))
    return list(batches)


async def _downsample(
    database: Database, start: datetime, end: datetime, buckets: int, channel: str = "temp"
) -> list[Bucket]:
    async with database.session() as session:
        return await history.downsample(
            session,
            actor=ADMIN,
            device_id=DEVICE,
            channel=channel,
            start=start,
            end=end,
            buckets=buckets,
        )


def _exact(database: Database) -> bool:
    """PostgreSQL sums exactly (NUMERIC); SQLite in doubles."""
    return database.dialect == "postgresql"


def _check(found: list[Bucket], points: list[Point], start: datetime, end: datetime) -> None:
    """Each bucket holds exactly its samples' aggregates, and every sample in range is in one."""
    inside = [p for p in points if start <= p[0] < end]
    assert sum(b.count for b in found) == len(inside)
    for previous, bucket in itertools.pairwise(found):
        assert previous.end <= bucket.start
    for bucket in found:
        assert start <= bucket.start < bucket.end <= end
        mine = [p for p in inside if bucket.start <= p[0] < bucket.end]
        numbers = [Decimal(int(v)) if isinstance(v, bool) else Decimal(v) for _, v, _ in mine]
        assert (bucket.count, bucket.min, bucket.max) == (
            len(mine),
            float(min(numbers)),
            float(max(numbers)),
        )
        assert bucket.mean == pytest.approx(float(sum(numbers) / len(numbers)), rel=1e-12)
        assert bucket.replayed == any(replayed for *_, replayed in mine)


async def _ten_minutes(database: Database) -> list[Batch]:
    """1 Hz for ten minutes: decimals, minute 3 replayed, minute 5 silent."""
    live = batch(
        (i, Decimal(f"{(i * 7) % 50}.{i % 4 * 25:02d}"))
        for i in range(600)
        if not 180 <= i < 240 and not 300 <= i < 360
    )
    replayed = batch(((i, Decimal(i) / 4) for i in range(180, 240)), stream="r", origin="replay")
    return await _stored(database, live, replayed)


async def test_rollups_and_raw_samples_give_the_same_whole_minute_buckets(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    points = _points(await _ten_minutes(db), "temp")
    end = T0 + 10 * MINUTE
    assert history.plan(T0, end, 10).rollups
    rolled = await _downsample(db, T0, end, 10)
    _raw_only(monkeypatch)
    raw = await _downsample(db, T0, end, 10)
    assert len(rolled) == 9 and [b.replayed for b in rolled].count(True) == 1
    _check(rolled, points, T0, end)
    if _exact(db):
        assert rolled == raw
    else:  # doubles summed in another order
        assert [(b.start, b.end, b.count, b.min, b.max, b.replayed) for b in rolled] == [
            (b.start, b.end, b.count, b.min, b.max, b.replayed) for b in raw
        ]
        assert [b.mean for b in rolled] == pytest.approx([b.mean for b in raw], rel=1e-12)


async def test_whole_minutes_come_from_the_rollups_and_partial_ones_from_samples(
    db: Database,
) -> None:
    """With the samples of minutes 1 to 7 deleted, their rollups still answer for them."""
    points = _points(await _ten_minutes(db), "temp")
    async with db.session() as session:
        await session.execute(
            delete(TelemetrySample).where(
                TelemetrySample.ts >= T0 + MINUTE, TelemetrySample.ts < T0 + 8 * MINUTE
            )
        )
    start, end = T0 + timedelta(seconds=30), T0 + timedelta(seconds=530)
    found = await _downsample(db, start, end, 3)  # 530 s from 08:00 in 3: 3 whole minutes
    assert [(b.start - T0, b.end - T0) for b in found] == [
        (timedelta(seconds=30), 3 * MINUTE),
        (3 * MINUTE, 6 * MINUTE),
        (6 * MINUTE, timedelta(seconds=530)),
    ]
    _check(found, points, start, end)


@pytest.mark.parametrize("seconds", [(1, 599), (59.999, 540.001), (61, 419), (0.001, 120.001)])
async def test_a_range_inside_minutes_keeps_exact_edges(
    db: Database, seconds: tuple[float, float]
) -> None:
    """Samples a millisecond outside [start, end) stay out though their minute is read."""
    points = _points(await _ten_minutes(db), "temp")
    start, end = (T0 + timedelta(seconds=s) for s in seconds)
    assert history.plan(start, end, 1).rollups
    for buckets in (1, 4, 7):
        found = await _downsample(db, start, end, buckets)
        assert len(found) <= buckets
        _check(found, points, start, end)


async def test_decimal_means_are_exact_on_postgresql(db: Database) -> None:
    values = [Decimal("1E+17"), Decimal("1"), Decimal("-1E+17"), Decimal("0.1")]
    await _stored(db, batch((i, v) for i, v in enumerate(values)))
    rolled = await _downsample(db, T0, T0 + MINUTE, 1)
    raw = await _downsample(db, T0, T0 + MINUTE, 2)
    assert history.plan(T0, T0 + MINUTE, 1).rollups
    assert not history.plan(T0, T0 + MINUTE, 2).rollups
    for [bucket, *_] in (rolled, raw):
        assert (bucket.count, bucket.min, bucket.max) == (4, -1e17, 1e17)
        if _exact(db):
            assert bucket.mean == float(Decimal("1.1") / 4)  # doubles would lose the 1.1


@pytest.mark.parametrize("buckets", [2, 4])  # whole minutes, and half minutes
async def test_booleans_and_types_changing_within_the_range(db: Database, buckets: int) -> None:
    """A channel's type may change: each sample counts as its own value, booleans as 0/1."""
    values: list[Value] = [7, -3, Decimal("2.50"), Decimal("-0.25"), True, False, True, True]
    stored = await _stored(db, batch((i * 15, v) for i, v in enumerate(values)))
    found = await _downsample(db, T0, T0 + 2 * MINUTE, buckets)
    assert history.plan(T0, T0 + 2 * MINUTE, buckets).rollups == (buckets == 2)
    _check(found, _points(stored, "temp"), T0, T0 + 2 * MINUTE)
    async with db.session() as session:
        [info] = await history.channels(session, actor=ADMIN, device_id=DEVICE)
    assert info == history.ChannelInfo("temp", "boolean", T0 + timedelta(seconds=105))


async def test_late_replayed_and_resent_samples_count_once_in_their_minute(db: Database) -> None:
    first = batch((i, i) for i in range(120))
    await _stored(db, first)
    late = batch([(30.5, 1000)], stream="late", origin="replay")
    await _stored(db, late, first)  # the first batch again: already stored
    [minute_0, minute_1] = await _downsample(db, T0, T0 + 2 * MINUTE, 2)
    assert (minute_0.count, minute_0.max, minute_0.replayed) == (61, 1000.0, True)
    assert (minute_1.count, minute_1.max, minute_1.replayed) == (60, 119.0, False)


async def test_channels_come_from_the_rollups(db: Database) -> None:
    """Each channel's latest sample across minutes, streams and late arrivals."""
    rows = [(0, {"a": 1, "b": Decimal("2.0")}), (70, {"a": Decimal("1.5")})]
    await _stored(db, samples(rows), samples([(65, {"b": True})], stream="s2"))
    await _stored(db, samples([(20, {"a": False, "c": 1})], stream="late"))  # arrives last
    async with db.session() as session:
        found = await history.channels(session, actor=ADMIN, device_id=DEVICE)
    assert found == [
        history.ChannelInfo("a", "decimal", T0 + timedelta(seconds=70)),
        history.ChannelInfo("b", "boolean", T0 + timedelta(seconds=65)),
        history.ChannelInfo("c", "integer", T0 + timedelta(seconds=20)),
    ]


def test_the_switch_to_rollups_is_a_bucket_of_a_minute_or_a_range_of_two_hours() -> None:
    """Narrower buckets over at most two hours read samples; else whole minutes, rollups."""
    short = history.plan(T0, T0 + 60 * MINUTE - timedelta(microseconds=60), 60)
    assert not short.rollups and short.width < MINUTE and short.origin == T0
    minute = history.plan(T0, T0 + 60 * MINUTE, 60)
    assert (minute.rollups, minute.width, minute.whole_to) == (True, MINUTE, T0 + 60 * MINUTE)
    two_hours = history.plan(T0, T0 + history.RAW_SPAN, 500)
    assert not two_hours.rollups and two_hours.width == timedelta(seconds=14.4)
    longer = history.plan(T0, T0 + history.RAW_SPAN + timedelta(milliseconds=1), 500)
    assert (longer.rollups, longer.width) == (True, MINUTE)  # 121 buckets, not 500
    wider = history.plan(T0, T0 + 501 * MINUTE, 500)
    assert wider.width == 2 * MINUTE  # a minute and a bit, rounded up to whole minutes


@pytest.mark.parametrize("buckets", [1, 7, 500, 1440])
def test_whole_minute_buckets_cover_an_unaligned_range_in_at_most_those_asked(
    buckets: int,
) -> None:
    start = T0 + timedelta(seconds=59.999)
    for end in (start + timedelta(days=d, seconds=s) for d in (1, 7) for s in (0, 0.5, 31)):
        cut = history.plan(start, end, buckets)
        assert cut.width % MINUTE == timedelta(0) and cut.origin == T0
        assert (cut.whole_from, cut.whole_to) == (T0 + MINUTE, T0 + (end - T0) // MINUTE * MINUTE)
        assert cut.origin + cut.width * buckets >= end
