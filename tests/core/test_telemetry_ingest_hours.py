"""The hourly ingest summary: exact counts in the storing transaction, one audit entry per
device and hour once the hour has ended, never twice, and gone with the retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from core.db.engine import Database
from core.db.models import AuditEntry, IngestHour
from core.protocol.telemetry import Batch, Gap, Origin, Quarantined, QuarantineReason, Sample
from core.services import audit
from core.services.telemetry import ingest_hours, postgres, retention, store

H0 = datetime(2026, 11, 30, 9, tzinfo=UTC)
HOUR = timedelta(hours=1)
H1 = H0 + HOUR
TS = 1_764_170_000_123


@pytest.fixture(autouse=True)
def _straight_copy_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every PostgreSQL commit tries the straight COPY: a resend then redoes it carefully,
    and the redone transaction must not count twice."""
    monkeypatch.setattr(postgres, "DIRECT_MIN_ROWS", 1)


def _batch(
    origin: Origin,
    *seqs: int,
    device: str = "press-07",
    held: tuple[int, ...] = (),
    gaps: tuple[Gap, ...] = (),
) -> Batch:
    samples = tuple(Sample(seq, TS + seq, {"temp": Decimal("41.5")}) for seq in seqs)
    quarantined = tuple(
        Quarantined(seq, TS + seq, QuarantineReason.BAD_VALUE, "channel 'x': null", '{"x":null}')
        for seq in held
    )
    return Batch(device, "s1", origin, samples, quarantined, gaps)


async def _hours(database: Database) -> list[tuple[Any, ...]]:
    async with database.session() as session:
        rows = await session.scalars(select(IngestHour).order_by(IngestHour.hour, "device_id"))
        return [
            (r.device_id, r.hour, r.stored, r.replayed, r.quarantined, r.dropped, r.summarized_at)
            for r in rows
        ]


async def _summaries(database: Database) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    async with database.session() as session:
        query = select(AuditEntry).where(AuditEntry.action == ingest_hours.ACTION)
        entries = await session.scalars(query.order_by(AuditEntry.id))
        return [(e.actor, e.action, e.target_type, e.target_id, e.after or {}) for e in entries]


async def _two_hours(database: Database) -> None:
    """press-07: one live sample in H0; in H1 a commit of a duplicate, one new live and two
    new replayed samples, one quarantined and a gap of 5, then all of it resent. press-08:
    one quarantined sample in H1, resent. Then a commit of nothing new, later in H1."""
    await store.store(database, [_batch("live", 1)], received_at=H0 + timedelta(minutes=30))
    mixed = [
        _batch("live", 1, 3),  # 1 is a duplicate
        _batch("replay", 4, 5, held=(6,), gaps=(Gap(7, 11),)),
        _batch("replay", device="press-08", held=(1,)),
    ]
    await store.store(database, mixed, received_at=H1 + timedelta(minutes=15))
    await store.store(database, mixed, received_at=H1 + timedelta(minutes=40))  # a resend
    await store.store(database, [_batch("live", 3)], received_at=H1 + timedelta(minutes=50))


async def test_each_commit_counts_only_what_it_newly_did(database: Database) -> None:
    await _two_hours(database)
    await store.store(database, [_batch("live", 2)], received_at=H1 + timedelta(hours=1))
    await store.store(database, [_batch("live", 2)], received_at=H1 + timedelta(hours=2))
    assert await _hours(database) == [
        ("press-07", H0, 1, 0, 0, 0, None),
        ("press-07", H1, 3, 2, 1, 5, None),
        ("press-08", H1, 0, 0, 1, 0, None),
        ("press-07", H1 + timedelta(hours=1), 1, 0, 0, 0, None),
        # H1 + 2h stored a duplicate alone: nothing, so no row
    ]
    async with database.session() as session:
        rows = await ingest_hours.hours(session, device_id="press-07", start=H1, end=H1 + 2 * HOUR)
    assert [(r.hour, r.stored) for r in rows] == [(H1, 3), (H1 + HOUR, 1)]


async def test_an_hour_is_audited_once_after_its_grace(database: Database) -> None:
    await _two_hours(database)
    # H1 has ended, but not GRACE ago: only H0 is due.
    just_ended = H1 + HOUR + ingest_hours.GRACE - timedelta(seconds=1)
    done = await ingest_hours.summarize(database, now=just_ended)
    assert [(s.device_id, s.hour) for s in done] == [("press-07", H0)]
    h0 = {"hour": H0.isoformat(), "stored": 1, "replayed": 0, "quarantined": 0, "dropped": 0}
    assert await _summaries(database) == [
        ("system", "telemetry.ingest_summary", "device", "press-07", h0)
    ]

    due = H1 + HOUR + ingest_hours.GRACE
    # The current hour has a row too: not due.
    await store.store(database, [_batch("live", 20)], received_at=due)
    assert len(await ingest_hours.summarize(database, now=due)) == 2
    assert len(await ingest_hours.summarize(database, now=due)) == 0  # nothing more
    assert len(await ingest_hours.summarize(database, now=due + timedelta(minutes=5))) == 0
    h1 = H1.isoformat()
    assert await _summaries(database) == [
        ("system", "telemetry.ingest_summary", "device", "press-07", h0),
        (
            "system",
            "telemetry.ingest_summary",
            "device",
            "press-07",
            {"hour": h1, "stored": 3, "replayed": 2, "quarantined": 1, "dropped": 5},
        ),
        (
            "system",
            "telemetry.ingest_summary",
            "device",
            "press-08",
            {"hour": h1, "stored": 0, "replayed": 0, "quarantined": 1, "dropped": 0},
        ),
    ]
    summarized = {(d, hour): at for d, hour, *_, at in await _hours(database)}
    assert summarized == {
        ("press-07", H0): just_ended,
        ("press-07", H1): due,
        ("press-08", H1): due,
        ("press-07", H1 + HOUR): None,
    }
    async with database.session() as session:
        assert (await audit.verify_chain(session)).intact


async def test_concurrent_summaries_write_each_entry_once(database: Database) -> None:
    """Two replicas summarizing at once: every device-hour audited exactly once."""
    devices = [f"press-{n:02d}" for n in range(40)]
    for hour in (H0, H1):
        batches = [_batch("live", 1 + (hour == H1), device=d) for d in devices]
        await store.store(database, batches, received_at=hour + timedelta(minutes=5))
    now = H1 + HOUR + ingest_hours.GRACE
    first, second = await asyncio.gather(
        ingest_hours.summarize(database, now=now), ingest_hours.summarize(database, now=now)
    )
    assert len(first) + len(second) == 80
    assert not {(s.device_id, s.hour) for s in first} & {(s.device_id, s.hour) for s in second}
    entries = await _summaries(database)
    assert sorted((e[3], e[4]["hour"]) for e in entries) == sorted(
        (d, h.isoformat()) for d in devices for h in (H0, H1)
    )
    assert all(e[4]["stored"] == 1 for e in entries)
    async with database.session() as session:
        assert (await audit.verify_chain(session)).intact


async def test_a_long_backlog_is_claimed_in_rounds(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_hours, "CLAIM_ROWS", 2)
    for n in range(5):
        await store.store(database, [_batch("live", n + 1)], received_at=H0 + n * HOUR)
    done = await ingest_hours.summarize(database, now=H0 + 6 * HOUR)
    assert [s.hour for s in done] == [H0 + n * HOUR for n in range(5)]
    assert len(await _summaries(database)) == 5


async def test_retention_deletes_old_hours_and_audits_it(database: Database) -> None:
    old = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=40)
    await store.store(database, [_batch("live", 1)], received_at=old)
    await store.store(database, [_batch("live", 2)], received_at=old + timedelta(days=20))
    done = await retention.upkeep(database, days=30, now=datetime.now(UTC))
    (deleted,) = [d for d in done.deleted if d.table == "ingest_hours"]
    assert (deleted.rows, deleted.oldest) == (1, old)
    assert [row[1] for row in await _hours(database)] == [old + timedelta(days=20)]
    async with database.session() as session:
        query = select(AuditEntry).where(AuditEntry.target_id == "ingest_hours")
        (entry,) = await session.scalars(query)
    assert entry.action == "telemetry.retention.delete"
    assert entry.before is not None and entry.before["rows"] == 1
    again = await retention.upkeep(database, days=30, now=datetime.now(UTC))
    assert not [d for d in again.deleted if d.table == "ingest_hours"]
