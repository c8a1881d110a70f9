"""Telemetry upkeep: the days ahead made, and telemetry past the retention removed.

Rules:
- The cutoff is a UTC midnight: keeping N days removes what is older than (today - N)
  00:00 UTC, so today and at least N whole days before it stay, and both databases and
  both tables agree on where history ends.
- PostgreSQL drops whole day partitions (``partitions.drop_before``: detached concurrently,
  so no insert or read waits for it), each audited in its drop's transaction. SQLite
  deletes samples in short transactions (``sweep``), because ingest shares its one write
  lock; rollups are swept the same way on both, and so are quarantined samples and gaps,
  by when they were received (safe for ingest: see ``sweep``). The hourly ingest counts
  (``ingest_hours``: a row per device and hour) go in one delete.
- On PostgreSQL a round holds an advisory lock: of several server replicas, one does it,
  and the others skip theirs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.services import audit
from core.services.telemetry import ingest_hours, partitions, sweep
from core.services.telemetry.partitions import Dropped
from core.services.telemetry.sweep import Deleted

ROUND_LOCK = 0x5050_5245  # the advisory lock of an upkeep round; any constant works
SWEPT = (sweep.ROLLUPS, sweep.QUARANTINE, sweep.GAPS)  # swept on both databases


@dataclass(frozen=True)
class Round:
    """What one upkeep round did."""

    ran: bool  # False when another replica was doing its round
    partitions: int | None  # day partitions attached after the round (PostgreSQL only)
    dropped: tuple[Dropped, ...] = ()
    deleted: tuple[Deleted, ...] = ()  # the sweeps that removed rows


def first_kept(now: datetime, days: int) -> date:
    """The oldest day kept when keeping ``days`` whole days before today (UTC)."""
    return partitions.day_of(now) - timedelta(days=days)


async def upkeep(
    database: Database, *, days: int, now: datetime, batch_rows: int | None = None
) -> Round:
    """Make the partitions ahead (PostgreSQL) and, when ``days`` > 0, remove what is older."""
    before = _midnight(first_kept(now, days)) if days > 0 else None
    if database.dialect != "postgresql":
        if before is None:
            return Round(ran=True, partitions=None)
        swept = [
            await sweep.sweep(database, table, before, batch_rows=batch_rows)
            for table in (sweep.SAMPLES, *SWEPT)
        ]
        swept.append(await ingest_hours.delete_before(database, before=before))
        return Round(ran=True, partitions=None, deleted=tuple(d for d in swept if d.rows))
    async with _round_lock(database) as pg:
        if pg is None:
            return Round(ran=False, partitions=None)
        await partitions.make_ahead(pg, partitions.day_of(now), database=str(database.engine.url))
        dropped: list[Dropped] = []
        swept = []
        if before is not None:
            dropped = await partitions.drop_before(pg, database, before.date(), audit=_audit_drop)
            for table in SWEPT:
                swept.append(await sweep.sweep(database, table, before, batch_rows=batch_rows))
            swept.append(await ingest_hours.delete_before(database, before=before))
        attached = sum(partition.attached for partition in await partitions.present(pg))
    return Round(True, attached, tuple(dropped), tuple(d for d in swept if d.rows))


@asynccontextmanager
async def _round_lock(database: Database) -> AsyncIterator[Any]:
    """A pooled asyncpg connection holding the round's advisory lock, or None if taken."""
    async with database.engine.connect() as connection:
        pg = (await connection.get_raw_connection()).driver_connection
        assert pg is not None
        if not await pg.fetchval("SELECT pg_try_advisory_lock($1)", ROUND_LOCK):
            yield None
            return
        try:
            yield pg
        finally:
            if not pg.is_closed():  # a lost connection took its lock with it
                await pg.execute("SELECT pg_advisory_unlock($1)", ROUND_LOCK)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def _audit_drop(session: AsyncSession, gone: Dropped) -> None:
    start = _midnight(gone.day)
    await audit.record(
        session,
        actor=sweep.ACTOR,
        action="telemetry.retention.drop",
        target_type="table",
        target_id=gone.name,
        before={"rows": gone.rows, **sweep.span(start, start + timedelta(days=1))},
    )
