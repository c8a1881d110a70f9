"""Storing batches: once per (device, stream, seq), exact values, a contiguous watermark."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from core.db.engine import Database
from core.db.models import QuarantinedSample, TelemetryGap, TelemetrySample
from core.protocol.telemetry import Batch, Gap, Quarantined, QuarantineReason, Sample
from core.services.telemetry import store

TS = 1_764_170_000_123


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
