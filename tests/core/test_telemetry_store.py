"""Storing batches: once per (device, stream, seq), exact values, a contiguous watermark,
and minute rollups that are exactly what the stored samples make."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal, localcontext
from typing import Any

import pytest
from sqlalchemy import func, select

from core.db.engine import Database
from core.db.models import QuarantinedSample, TelemetryGap, TelemetryRollup, TelemetrySample
from core.protocol.telemetry import Batch, Gap, Quarantined, QuarantineReason, Sample
from core.services.telemetry import postgres, store

TS = 1_764_170_000_123


@pytest.fixture(autouse=True)
def _straight_copy_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every PostgreSQL commit tries the straight COPY: a resend then takes the fallback."""
    monkeypatch.setattr(postgres, "DIRECT_MIN_ROWS", 1)


def _batch(*seqs: int, stream: str = "s1", device: str = "press-07") -> Batch:
    samples = tuple(
        Sample(seq, TS + seq, {"temp": Decimal("41.3750"), "parts": seq, "door": seq % 2 == 0})
        for seq in seqs
    )
    return Batch(device, stream, "replay", samples)


async def _store(database: Database, *batches: Batch) -> store.Stored:
    return await store.store(database, batches)


async def _row_count(database: Database) -> int:
    async with database.session() as session:
        return int(
            (await session.execute(select(func.count()).select_from(TelemetrySample))).scalar()
        )


async def test_values_are_stored_exactly(database: Database) -> None:
    stored = await _store(database, _batch(1))
    assert (stored.samples, stored.points) == (1, 3)
    assert stored.watermarks == (store.Watermark("press-07", "s1", 1),)
    async with database.session() as session:
        (row,) = (await session.execute(select(TelemetrySample))).scalars()
    assert row.readings == {"temp": Decimal("41.3750"), "parts": 1, "door": False}
    assert row.readings["temp"].as_tuple().exponent == -4  # scale kept
    assert type(row.readings["parts"]) is int and type(row.readings["door"]) is bool
    assert row.ts == store.timestamp(TS + 1) and row.replayed is True


async def test_a_duplicated_batch_is_stored_once_and_acked_again(database: Database) -> None:
    first = await _store(database, _batch(1, 2, 3))
    again = await _store(database, _batch(1, 2, 3), _batch(2))
    assert await _row_count(database) == 3
    assert first.watermarks == again.watermarks == (store.Watermark("press-07", "s1", 3),)


async def test_new_samples_beside_resent_ones_are_stored(database: Database) -> None:
    """Above the watermark, resent seqs (stored out of order) mix with new ones."""
    await _store(database, _batch(5, 6))
    assert (await _store(database, _batch(4, 5, 6, 7))).watermarks[0].acked_seq == 0
    assert await _row_count(database) == 4
    assert (await _store(database, _batch(1, 2, 3))).watermarks[0].acked_seq == 7


async def test_the_watermark_waits_for_the_gap_to_fill(database: Database) -> None:
    assert (await _store(database, _batch(1, 2))).watermarks[0].acked_seq == 2
    assert (await _store(database, _batch(5, 6))).watermarks[0].acked_seq == 2
    assert (await _store(database, _batch(4))).watermarks[0].acked_seq == 2
    # seq 3 closes the gap: the watermark jumps past 4..6 stored earlier.
    assert (await _store(database, _batch(3))).watermarks[0].acked_seq == 6
    async with database.session() as session:
        assert await store.watermark(session, "press-07", "s1") == 6
        assert await store.watermark(session, "press-07", "other") == 0


async def test_streams_and_devices_have_their_own_watermarks(database: Database) -> None:
    stored = await _store(
        database, _batch(1, 2), _batch(1, stream="s2"), _batch(2, device="lathe-1")
    )
    assert set(stored.watermarks) == {
        store.Watermark("press-07", "s1", 2),
        store.Watermark("press-07", "s2", 1),
        store.Watermark("lathe-1", "s1", 0),
    }


async def test_quarantined_samples_count_toward_the_watermark(database: Database) -> None:
    held = Quarantined(2, TS, QuarantineReason.BAD_VALUE, "channel 'x': null", '{"x":null}')
    batch = Batch("press-07", "s1", "live", _batch(1, 3).samples, (held,))
    stored = await _store(database, batch)
    assert stored.quarantined == 1 and stored.watermarks[0].acked_seq == 3
    await _store(database, batch)  # a resend changes nothing
    async with database.session() as session:
        rows = (await session.execute(select(QuarantinedSample))).scalars().all()
    assert [(r.seq, r.reason, r.raw) for r in rows] == [(2, "bad_value", '{"x":null}')]
    assert await _row_count(database) == 2


async def test_a_long_out_of_order_run_is_walked_past(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past one look's window: the walk goes on until the first gap."""
    monkeypatch.setattr(store, "EXTEND_WINDOW", 7)
    await _store(database, _batch(*range(2, 30)), _batch(31))
    assert (await _store(database, _batch(1))).watermarks[0].acked_seq == 29


async def test_a_reported_gap_counts_toward_the_watermark(database: Database) -> None:
    """Seqs a station dropped under its cap will never come: the watermark passes them."""
    assert (await _store(database, _batch(1, 2))).watermarks[0].acked_seq == 2
    assert (await _store(database, _batch(900, 901))).watermarks[0].acked_seq == 2
    reported = Batch("press-07", "s1", "replay", _batch(3).samples, gaps=(Gap(4, 899),))
    assert (await _store(database, reported)).watermarks[0].acked_seq == 901
    # A gap stored before the samples that close up to it is walked over later too.
    early = Batch("press-07", "s2", "replay", _batch(10, stream="s2").samples, gaps=(Gap(2, 9),))
    assert (await _store(database, early)).watermarks[0].acked_seq == 0
    assert (await _store(database, _batch(1, stream="s2"))).watermarks[0].acked_seq == 10
    async with database.session() as session:
        gaps = (await session.execute(select(TelemetryGap).order_by(TelemetryGap.stream))).scalars()
        assert [(g.stream, g.first_seq, g.last_seq, g.reason) for g in gaps] == [
            ("s1", 4, 899, "outbox_cap"),
            ("s2", 2, 9, "outbox_cap"),
        ]


# -- minute rollups ---------------------------------------------------------------------------

MINUTE_MS = 60_000


def _sample(seq: int, ms: int, **values: int | bool | Decimal) -> Sample:
    return Sample(seq, TS - TS % MINUTE_MS + ms, values)


async def _rollups(database: Database) -> dict[tuple[str, str, datetime], tuple[Any, ...]]:
    async with database.session() as session:
        rows = (await session.execute(select(TelemetryRollup))).scalars()
        return {
            (r.device_id, r.channel, r.minute): (
                r.min,
                r.max,
                r.sum,
                r.count,
                r.replayed,
                r.last_ts,
                r.last_kind,
            )
            for r in rows
        }


async def _recomputed(database: Database) -> dict[tuple[str, str, datetime], tuple[Any, ...]]:
    """The rollups the stored samples make, worked out from scratch."""
    async with database.session() as session:
        samples = (await session.execute(select(TelemetrySample))).scalars().all()
    points: dict[tuple[str, str, datetime], list[tuple[datetime, Decimal, str, bool]]] = {}
    for s in samples:
        minute = s.ts.replace(second=0, microsecond=0)
        for channel, value in s.readings.items():
            kind = {bool: "boolean", int: "integer", Decimal: "decimal"}[type(value)]
            number = value if isinstance(value, Decimal) else Decimal(int(value))
            points.setdefault((s.device_id, channel, minute), []).append(
                (s.ts, number, kind, s.replayed)
            )
    with localcontext(prec=1000):
        return {
            key: (
                min(p[1] for p in got),
                max(p[1] for p in got),
                sum((p[1] for p in got), Decimal(0)),
                len(got),
                sum(p[3] for p in got),
                max(got)[0],
                max(got, key=lambda p: p[0])[2],
            )
            for key, got in points.items()
        }


async def test_rollups_are_what_the_stored_samples_make(database: Database) -> None:
    """Duplicates, replays, late samples and a channel changing type, all in their minute."""
    live = [
        _sample(s, s * 7_000, temp=Decimal("41.3750"), parts=s, door=s % 2 == 0) for s in (1, 2, 3)
    ]
    await _store(database, Batch("press-07", "s1", "live", tuple(live)))
    late = (_sample(4, -30_000, temp=Decimal("-0.0100"), parts=True),)  # the minute before
    again = Batch("press-07", "s1", "replay", (*live[1:], *late, live[2]))  # 2, 3 resent
    await _store(database, again, again)
    later = (_sample(5, 80_000, parts=9), _sample(6, 59_000, parts=Decimal("2.50")))
    await _store(database, Batch("press-07", "s1", "replay", later))
    big = _sample(1, 10_000, parts=2**63 - 1, temp=Decimal("1E+30"))
    await _store(
        database, Batch("lathe-1", "s9", "replay", (big, _sample(2, 11_000, parts=2**63 - 1)))
    )
    rollups = await _rollups(database)
    assert rollups == await _recomputed(database)
    minute = store.timestamp(TS - TS % MINUTE_MS)
    assert rollups[("press-07", "parts", minute)][2:] == (
        Decimal("8.50"),
        4,
        1,
        minute + timedelta(seconds=59),
        "decimal",
    )
    assert rollups[("press-07", "parts", minute - timedelta(minutes=1))][4:] == (
        1,
        minute - timedelta(seconds=30),
        "boolean",
    )
    assert rollups[("lathe-1", "parts", minute)][2] == 2 * (2**63 - 1)  # past BIGINT, exact


async def test_decimal_sums_are_exact(database: Database) -> None:
    samples = tuple(_sample(s, s * 1_000, x=Decimal("0.1")) for s in range(1, 11))
    await _store(database, Batch("press-07", "s1", "live", samples[:4]))
    await _store(database, Batch("press-07", "s1", "live", samples))
    ((low, high, total, count, *_),) = (await _rollups(database)).values()
    assert (str(low), str(high), str(total), count) == ("0.1", "0.1", "1.0", 10)


async def test_a_seq_resent_with_another_ts_is_not_stored_again(database: Database) -> None:
    await _store(database, Batch("press-07", "s1", "live", (_sample(1, 1_000, x=1),)))
    moved = Batch("press-07", "s1", "replay", (_sample(1, 5_000, x=2), _sample(2, 6_000, x=3)))
    assert (await _store(database, moved)).watermarks[0].acked_seq == 2
    assert await _row_count(database) == 2
    assert [r[3] for r in (await _rollups(database)).values()] == [2]


async def test_concurrent_writers_of_the_same_minutes_agree(database: Database) -> None:
    """Overlapping batches at once: no deadlock, each sample once, rollups exact."""

    def batch(device: str, seqs: range) -> Batch:
        samples = (_sample(s, s * 500, a=s, b=Decimal(s) / 8, c=s % 3 == 0) for s in seqs)
        return Batch(device, "s1", "replay", tuple(samples))

    batches = [batch(d, range(low, low + 60)) for low in (1, 31, 61, 1) for d in ("a-1", "b-2")]
    await asyncio.gather(*(_store(database, b, batches[-1 - n]) for n, b in enumerate(batches)))
    assert await _row_count(database) == 2 * 120
    assert await _rollups(database) == await _recomputed(database)
