"""Retention and the days ahead: whole old days go, newer ones stay, each removal audited.

PostgreSQL drops whole day partitions (made ahead, detached concurrently); SQLite deletes in
bounded batches. Rollups past the age go too, in bounded batches on both, and so do
quarantined samples and gaps received before it.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select, text

from core.db.engine import Database
from core.db.models import (
    AuditEntry,
    QuarantinedSample,
    TelemetryGap,
    TelemetryRollup,
    TelemetrySample,
)
from core.services.telemetry import partitions, retention, sweep
from core.services.telemetry.partitions import day_of, name_of
from tests.core.retention_data import (
    FIRST_KEPT,
    KEEP,
    NOW,
    OLD,
    TODAY,
    add_gaps,
    add_quarantined,
    add_rollups,
    add_samples,
    connect,
    midnight,
    tables,
)


async def _left(database: Database) -> tuple[list[date], list[date]]:
    """The days of the samples and of the rollups left."""
    async with database.session() as session:
        samples = await session.scalars(select(TelemetrySample.ts))
        rollups = await session.scalars(select(TelemetryRollup.minute))
        return sorted({day_of(t) for t in samples}), sorted({day_of(t) for t in rollups})


async def _retention_audit(database: Database) -> list[tuple[str, str, dict[str, Any]]]:
    async with database.session() as session:
        query = select(AuditEntry).where(AuditEntry.action.like("telemetry.retention.%"))
        entries = await session.scalars(query.order_by(AuditEntry.id))
        return [(e.action, e.target_id, e.before or {}) for e in entries]


@pytest.fixture
def pg(database: Database) -> Database:
    """The test database, on PostgreSQL only."""
    if database.dialect != "postgresql":
        pytest.skip("day partitions: PostgreSQL")
    return database


@pytest.fixture
async def lite(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite database, whichever backends the suite runs on."""
    path = tmp_path / "lite.db"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite+aiosqlite:///{path}", audit_key=b"k" * 32)
    yield database
    await database.close()


async def test_nothing_is_removed_when_retention_is_off(database: Database) -> None:
    await add_samples(database, "press-07", OLD, 2)
    await add_rollups(database, "press-07", "temp", OLD, 2)
    done = await retention.upkeep(database, days=0, now=NOW)
    assert done.ran and not done.dropped and not done.deleted
    assert await _left(database) == ([OLD], [OLD])


@pytest.mark.backends("one")
async def test_postgres_makes_days_ahead_and_drops_whole_days_past_the_age(pg: Database) -> None:
    ahead = TODAY + timedelta(days=partitions.AHEAD_DAYS)
    async with pg.session() as session:  # the migration made it: take it away
        await session.execute(text(f"DROP TABLE IF EXISTS {name_of(ahead)}"))
    partitions.forget()
    await add_samples(pg, "press-07", OLD, 3)
    await add_samples(pg, "press-07", FIRST_KEPT, 2)
    await add_samples(pg, "press-07", TODAY, 1)
    await add_rollups(pg, "press-07", "temp", OLD, 4)
    await add_rollups(pg, "lathe-1", "temp", OLD, 3)
    await add_rollups(pg, "press-07", "temp", FIRST_KEPT, 2)

    done = await retention.upkeep(pg, days=KEEP, now=NOW, batch_rows=2)

    found = await tables(pg)
    wanted = [name_of(TODAY + timedelta(days=n)) for n in range(partitions.AHEAD_DAYS + 1)]
    assert all(found[name].attached for name in wanted if name in found)
    assert set(wanted) <= set(found)
    assert min(found) == name_of(FIRST_KEPT)  # no older table left, attached or not
    assert done.partitions == len(found)
    assert {d.name: d.rows for d in done.dropped}[name_of(OLD)] == 3
    assert [(d.table, d.rows, d.batches) for d in done.deleted] == [("telemetry_rollups", 7, 4)]
    assert await _left(pg) == ([FIRST_KEPT, TODAY], [FIRST_KEPT])
    audited = await _retention_audit(pg)
    assert ("telemetry.retention.drop", name_of(OLD)) in [a[:2] for a in audited]
    dropped = next(a[2] for a in audited if a[1] == name_of(OLD))
    assert dropped == {
        "rows": 3,
        "from": midnight(OLD).isoformat(),
        "to": midnight(FIRST_KEPT).isoformat(),
    }
    assert audited[-1] == (
        "telemetry.retention.delete",
        "telemetry_rollups",
        {"rows": 7, "from": midnight(OLD).isoformat(), "to": midnight(FIRST_KEPT).isoformat()},
    )

    again = await retention.upkeep(pg, days=KEEP, now=NOW)  # idempotent: nothing left to do
    assert again.ran and not again.dropped and not again.deleted
    assert await _retention_audit(pg) == audited


@pytest.mark.backends("one")
async def test_postgres_finishes_a_detach_cut_short(pg: Database) -> None:
    """A concurrent detach interrupted (a stopped server) is finalized and dropped next time."""
    await add_samples(pg, "press-07", OLD, 2)
    reader = await connect(pg)
    detacher = await connect(pg)
    try:
        async with reader.transaction(isolation="repeatable_read"):
            await reader.fetchval("SELECT count(*) FROM telemetry_samples")  # holds a snapshot
            await detacher.execute("SET statement_timeout = 300")
            with pytest.raises(asyncpg.QueryCanceledError):  # waits for the reader, gives up
                await detacher.execute(
                    f"ALTER TABLE telemetry_samples DETACH PARTITION {name_of(OLD)} CONCURRENTLY"
                )
    finally:
        await reader.close()
        await detacher.close()
    assert (await tables(pg))[name_of(OLD)].detaching

    done = await retention.upkeep(pg, days=KEEP, now=NOW)

    assert {d.name: d.rows for d in done.dropped}[name_of(OLD)] == 2
    assert name_of(OLD) not in await tables(pg)


@pytest.mark.backends("one")
async def test_one_replica_runs_a_round_at_a_time(pg: Database) -> None:
    holder = await connect(pg)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", retention.ROUND_LOCK)
        assert not (await retention.upkeep(pg, days=KEEP, now=NOW)).ran
        await holder.execute("SELECT pg_advisory_unlock($1)", retention.ROUND_LOCK)
        assert (await retention.upkeep(pg, days=KEEP, now=NOW)).ran
    finally:
        await holder.close()


@pytest.mark.backends("one")
async def test_two_makers_of_one_day_both_succeed(pg: Database) -> None:
    """Ingest on one replica and the upkeep on another may make the same new day at once."""
    day = TODAY + timedelta(days=partitions.AHEAD_DAYS + 3)
    url = str(pg.engine.url)
    makers = [await connect(pg) for _ in range(2)]
    try:
        partitions.forget()
        await asyncio.gather(*(partitions.ensure(m, [day], database=url) for m in makers))
        assert (await tables(pg))[name_of(day)].attached
    finally:
        await makers[0].execute(f"DROP TABLE IF EXISTS {name_of(day)}")
        for maker in makers:
            await maker.close()
        partitions.forget()


async def test_sqlite_deletes_old_rows_in_bounded_batches(lite: Database) -> None:
    await add_samples(lite, "press-07", OLD, 7)
    await add_samples(lite, "lathe-1", OLD, 5)
    await add_samples(lite, "press-07", FIRST_KEPT, 3)
    await add_rollups(lite, "press-07", "temp", OLD, 3)
    await add_rollups(lite, "press-07", "door", OLD, 3)
    await add_rollups(lite, "press-07", "temp", FIRST_KEPT, 2)

    done = await retention.upkeep(lite, days=KEEP, now=NOW, batch_rows=4)

    assert done.partitions is None and not done.dropped
    runs = {d.table: (d.rows, d.batches) for d in done.deleted}
    # 12 samples over two devices in three transactions of 4; 6 rollups in two (4, then 2).
    assert runs == {"telemetry_samples": (12, 3), "telemetry_rollups": (6, 2)}
    assert await _left(lite) == ([FIRST_KEPT], [FIRST_KEPT])
    span = {"from": midnight(OLD).isoformat(), "to": midnight(FIRST_KEPT).isoformat()}
    assert await _retention_audit(lite) == [
        ("telemetry.retention.delete", "telemetry_samples", {"rows": 12, **span}),
        ("telemetry.retention.delete", "telemetry_rollups", {"rows": 6, **span}),
    ]
    again = await retention.upkeep(lite, days=KEEP, now=NOW, batch_rows=4)
    assert not again.deleted and len(await _retention_audit(lite)) == 2
    async with lite.session() as session:
        assert await session.scalar(select(func.count()).select_from(TelemetrySample)) == 3


async def _received(database: Database) -> tuple[list[date], list[date]]:
    """The days the quarantined samples and the gaps left were received."""
    async with database.session() as session:
        held = await session.scalars(select(QuarantinedSample.received_at))
        gaps = await session.scalars(select(TelemetryGap.received_at))
        return sorted({day_of(t) for t in held}), sorted({day_of(t) for t in gaps})


async def test_quarantine_and_gaps_received_before_the_age_go_in_bounded_batches(
    database: Database,
) -> None:
    await add_quarantined(database, "press-07", OLD, 5)
    await add_quarantined(database, "lathe-1", OLD, 2)
    await add_quarantined(database, "press-07", FIRST_KEPT, 2)
    await add_gaps(database, "press-07", OLD, 3)
    await add_gaps(database, "press-07", FIRST_KEPT, 1)

    done = await retention.upkeep(database, days=KEEP, now=NOW, batch_rows=3)

    runs = {d.table: (d.rows, d.batches) for d in done.deleted}
    # 7 quarantined over two devices in three transactions (3, 3, 1); 3 gaps in one.
    assert runs == {"telemetry_quarantine": (7, 3), "telemetry_gaps": (3, 1)}
    assert await _received(database) == ([FIRST_KEPT], [FIRST_KEPT])
    span = {"from": midnight(OLD).isoformat(), "to": midnight(FIRST_KEPT).isoformat()}
    deletes = [a for a in await _retention_audit(database) if a[0].endswith(".delete")]
    assert deletes == [
        ("telemetry.retention.delete", "telemetry_quarantine", {"rows": 7, **span}),
        ("telemetry.retention.delete", "telemetry_gaps", {"rows": 3, **span}),
    ]
    again = await retention.upkeep(database, days=KEEP, now=NOW, batch_rows=3)
    assert not again.deleted
    assert await _received(database) == ([FIRST_KEPT], [FIRST_KEPT])


async def test_old_quarantine_and_gaps_are_found_through_received_at(lite: Database) -> None:
    """Each batch reads the oldest received off the index, not the whole table."""
    async with lite.session() as session:
        for table in (sweep.QUARANTINE, sweep.GAPS):
            statement = sweep._old_rows(table, (), midnight(FIRST_KEPT), 3, sqlite=True)
            compiled = statement.compile(lite.engine, compile_kwargs={"literal_binds": True})
            plan = await session.execute(text(f"EXPLAIN QUERY PLAN {compiled}"))
            details = " | ".join(row[-1] for row in plan)
            assert f"INDEX ix_{table.model.__tablename__}_received_at" in details, details
            assert "SCAN" not in details, details  # no full scan of the table
