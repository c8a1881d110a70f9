"""History for plots: a device's channels, and downsampling done by the database."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from core.db.engine import Database
from core.errors import ForbiddenError, NotFoundError
from core.services.actor import Actor
from core.services.telemetry import history, store
from core.services.telemetry.history import Bucket
from tests.core.history_data import ADMIN, DEVICE, T0, add_device, batch


@pytest.fixture
async def db(database: Database) -> Database:
    """The test database with the device registered."""
    await add_device(database)
    return database


async def _downsample(
    database: Database,
    seconds: float,
    buckets: int,
    *,
    channel: str = "temp",
    actor: Actor = ADMIN,
) -> list[Bucket]:
    async with database.session() as session:
        return await history.downsample(
            session,
            actor=actor,
            device_id=DEVICE,
            channel=channel,
            start=T0,
            end=T0 + timedelta(seconds=seconds),
            buckets=buckets,
        )


def _summary(buckets: list[Bucket]) -> list[tuple[float, int, float, float, float]]:
    """(seconds after T0, count, min, max, mean) of each bucket."""
    return [
        ((b.start - T0).total_seconds(), b.count, b.min, b.max, round(b.mean, 9)) for b in buckets
    ]


async def test_buckets_hold_min_max_mean_and_count(db: Database) -> None:
    await store.store(db, [batch((i, i) for i in range(100))])
    found = await _downsample(db, 100, 4)
    assert _summary(found) == [
        (0.0, 25, 0.0, 24.0, 12.0),
        (25.0, 25, 25.0, 49.0, 37.0),
        (50.0, 25, 50.0, 74.0, 62.0),
        (75.0, 25, 75.0, 99.0, 87.0),
    ]
    assert [b.end - b.start for b in found] == [timedelta(seconds=25)] * 4


async def test_empty_buckets_are_left_out(db: Database) -> None:
    await store.store(db, [batch([(1, 10), (2, 20), (95, 7)])])
    found = await _downsample(db, 100, 10)
    assert _summary(found) == [(0.0, 2, 10.0, 20.0, 15.0), (90.0, 1, 7.0, 7.0, 7.0)]
    assert found[-1].end == T0 + timedelta(seconds=100)


async def test_start_is_inclusive_end_exclusive_and_edges_belong_to_the_later_bucket(
    db: Database,
) -> None:
    """A sample exactly on a bucket edge opens the next bucket; a millisecond less does not."""
    points = [(0, 1), (9.999, 2), (10, 3), (19.999, 4), (20, 5)]
    await store.store(db, [batch(points)])
    found = await _downsample(db, 20, 2)
    assert _summary(found) == [(0.0, 2, 1.0, 2.0, 1.5), (10.0, 2, 3.0, 4.0, 3.5)]


async def test_decimals_compare_as_numbers_not_text(db: Database) -> None:
    """On SQLite decimals are text, where '10.25' < '9.5'; min and max must not say so."""
    values = [Decimal("9.5"), Decimal("10.25"), Decimal("9.75"), Decimal("-0.5")]
    await store.store(db, [batch((i, v) for i, v in enumerate(values))])
    [bucket] = await _downsample(db, 10, 1)
    assert (bucket.min, bucket.max, bucket.count) == (-0.5, 10.25, 4)
    assert bucket.mean == pytest.approx(7.25)


async def test_booleans_are_zero_and_one(db: Database) -> None:
    await store.store(db, [batch([(0, True), (1, False), (2, True)], channel="door")])
    [bucket] = await _downsample(db, 10, 1, channel="door")
    assert (bucket.min, bucket.max, bucket.mean) == (0.0, 1.0, pytest.approx(2 / 3))


async def test_a_bucket_is_replayed_if_any_of_its_samples_was(db: Database) -> None:
    live = batch([(1, 1), (11, 2)], stream="live")
    replayed = batch([(12, 3)], stream="replay", origin="replay")
    await store.store(db, [live, replayed])
    found = await _downsample(db, 20, 2)
    assert [(b.count, b.replayed) for b in found] == [(1, False), (2, True)]


async def test_other_channels_and_devices_stay_out(db: Database) -> None:
    await add_device(db, "lathe-1")
    await store.store(
        db,
        [
            batch([(1, 5)]),
            batch([(1, 500)], channel="rpm", stream="s2"),
            batch([(1, 900)], device="lathe-1"),
        ],
    )
    assert _summary(await _downsample(db, 10, 1)) == [(0.0, 1, 5.0, 5.0, 5.0)]
    assert await _downsample(db, 10, 1, channel="nothing") == []


async def test_a_week_comes_back_in_at_most_the_buckets_asked_for(db: Database) -> None:
    """A sample every 5 minutes for a week (2016) folds into the buckets; the cap holds too.

    Buckets of a minute or more are whole minutes: 200 of 50.4 minutes widen to 198 of 51,
    and the cap's 2000 of 5.04 minutes to 1680 of 6 (each holding a sample or two).
    """
    week = 7 * 24 * 3600
    await store.store(db, [batch((i * 300, i % 100) for i in range(week // 300))])
    found = await _downsample(db, week, 200)
    assert len(found) == 198 and sum(b.count for b in found) == week // 300
    assert {b.end - b.start for b in found[:-1]} == {timedelta(minutes=51)}
    assert (min(b.min for b in found), max(b.max for b in found)) == (0.0, 99.0)
    capped = await _downsample(db, week, 1_000_000)
    assert len(capped) == 1680 and sum(b.count for b in capped) == week // 300


async def test_values_beyond_a_double_are_clamped_not_an_error(db: Database) -> None:
    """A NUMERIC a double cannot hold still plots (PostgreSQL refuses to cast it)."""
    values = [Decimal("1e400"), Decimal("-1e400"), Decimal("1e-400"), Decimal("2")]
    await store.store(db, [batch((i, v) for i, v in enumerate(values))])
    [bucket] = await _downsample(db, 10, 1)
    limit = float(history.FLOAT_LIMIT)
    assert (bucket.min, bucket.max, bucket.count) == (-limit, limit, 4)


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (T0, T0, "start"),
        (T0 + timedelta(seconds=1), T0, "start"),
        (T0.replace(tzinfo=None), T0 + timedelta(1), "start"),
        (T0, (T0 + timedelta(1)).replace(tzinfo=None), "end"),
    ],
)
async def test_bad_ranges_are_refused(
    db: Database, start: datetime, end: datetime, field: str
) -> None:
    async with db.session() as session:
        with pytest.raises(ValueError, match=r"before|timezone") as raised:
            await history.downsample(
                session, actor=ADMIN, device_id=DEVICE, channel="t", start=start, end=end, buckets=5
            )
    assert isinstance(raised.value, history.HistoryError) and raised.value.field == field


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"buckets": 0}, history.HistoryError, "buckets"),
        ({"channel": "Bad Name"}, history.HistoryError, "channel"),
        ({"device_id": "ghost"}, NotFoundError, None),
        ({"actor": Actor("vic", permissions=frozenset({"devices:read"}))}, ForbiddenError, None),
    ],
)
async def test_bad_requests_are_refused(
    db: Database, changes: dict[str, object], error: type[Exception], field: str | None
) -> None:
    arguments: dict[str, object] = {
        "actor": ADMIN,
        "device_id": DEVICE,
        "channel": "temp",
        "start": T0,
        "end": T0 + timedelta(1),
        "buckets": 5,
    }
    async with db.session() as session:
        with pytest.raises(error) as raised:
            await history.downsample(session, **(arguments | changes))  # type: ignore[arg-type]
    assert getattr(raised.value, "field", None) == field


async def test_channels_list_type_and_latest_time(db: Database) -> None:
    await add_device(db, "lathe-1")
    old = batch([(1, Decimal("1.5")), (30, Decimal("2.5"))], channel="temp")
    door = batch([(5, True)], channel="door", stream="s2")
    count = batch([(40, 7)], channel="parts", stream="s3")
    await store.store(db, [old, door, count, batch([(99, 1)], device="lathe-1")])
    async with db.session() as session:
        found = await history.channels(session, actor=ADMIN, device_id=DEVICE)
        other = await history.channels(session, actor=ADMIN, device_id="lathe-1")
    assert found == [
        history.ChannelInfo("door", "boolean", T0 + timedelta(seconds=5)),
        history.ChannelInfo("parts", "integer", T0 + timedelta(seconds=40)),
        history.ChannelInfo("temp", "decimal", T0 + timedelta(seconds=30)),
    ]
    assert [c.channel for c in other] == ["temp"]


async def test_channels_of_a_quiet_device_and_of_no_device(db: Database) -> None:
    async with db.session() as session:
        assert await history.channels(session, actor=ADMIN, device_id=DEVICE) == []
        with pytest.raises(NotFoundError):
            await history.channels(session, actor=ADMIN, device_id="ghost")
        with pytest.raises(ForbiddenError):
            await history.channels(session, actor=Actor("nobody"), device_id=DEVICE)


def test_bucket_width_covers_the_range_in_whole_microseconds() -> None:
    """Rounded up, so the last bucket ends at or after the range's end."""
    assert history.bucket_width(T0, T0 + timedelta(seconds=10), 3) == timedelta(
        microseconds=3_333_334
    )
    assert history.bucket_width(T0, T0 + timedelta(microseconds=5), 2000) == timedelta(
        microseconds=1
    )
