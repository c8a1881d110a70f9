"""Telemetry upkeep: the days ahead made, and samples and rollups past the retention removed.

Rules:
- The cutoff is a UTC midnight: keeping N days removes what is older than (today - N)
  00:00 UTC, so today and at least N whole days before it stay, and both databases and
  both tables agree on where history ends.
- PostgreSQL drops whole day partitions (``partitions.drop_before``: detached concurrently,
  so no insert or read waits for it). SQLite deletes samples in transactions of at most
  BATCH_ROWS rows, pausing after each, because ingest shares SQLite's one write lock.
  Rollups are deleted the same way on both.
- Neither table has an index on time alone, so no batch scans for old rows: keys (a
  device, a device's channel) are walked by index probes, and each key's old rows are
  deleted through its index range. The probes take no write lock; only the deletes do.
- Every partition dropped is audited in its drop's transaction; a table's delete run in its
  last batch's transaction (a run cut short is finished, and audited, by the next round).
- On PostgreSQL a round holds an advisory lock: of several server replicas, one does it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Delete,
    Integer,
    Select,
    delete,
    func,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.expression import ColumnClause, ColumnElement

from core.db.engine import Database
from core.db.models import TelemetryRollup, TelemetrySample
from core.services import audit
from core.services.telemetry import partitions
from core.services.telemetry.partitions import Dropped

ACTOR = "system"  # the audit's actor for what nobody asked for (as command deadlines)
# Rows one delete transaction removes at most. On SQLite (2 busy cores) 1,000 held the write
# lock ~30-40 ms (p50; p99 ~0.1 s) and a writer committing every 10 ms kept its p99 within
# 1.4x of idle; 5,000 held it ~130-150 ms and that p99 grew 3.5-6x.
BATCH_ROWS = 1_000
# After each batch, a pause as long as the batch took (at least this): an ingest commit
# waiting for SQLite's lock gets it first, so retention never takes over half the writes.
MIN_PAUSE_S = 0.01
ROUND_LOCK = 0x5050_5245  # the advisory lock of an upkeep round; any constant works

Key = tuple[str, ...]  # a device, or a device and a channel
OldRows = Callable[[Key, int], Delete]  # at most n of a key's rows before the cutoff


@dataclass(frozen=True)
class Deleted:
    """One table's delete run: rows removed, in how many transactions, and the oldest."""

    table: str
    rows: int
    batches: int
    oldest: datetime | None  # the oldest time removed: the run removed [oldest, cutoff)
    slowest_s: float  # the longest batch, from its first delete to its commit


@dataclass(frozen=True)
class Round:
    """What one upkeep round did."""

    ran: bool  # False when another replica was doing its round
    partitions: int | None  # day partitions attached after the round (PostgreSQL only)
    dropped: tuple[Dropped, ...] = ()
    deleted: tuple[Deleted, ...] = ()


def first_kept(now: datetime, days: int) -> date:
    """The oldest day kept when keeping ``days`` whole days before today (UTC)."""
    return partitions.day_of(now) - timedelta(days=days)


async def upkeep(
    database: Database, *, days: int, now: datetime, batch_rows: int = BATCH_ROWS
) -> Round:
    """Make the partitions ahead (PostgreSQL) and, when ``days`` > 0, remove what is older."""
    cutoff = first_kept(now, days) if days > 0 else None
    if database.dialect != "postgresql":
        if cutoff is None:
            return Round(ran=True, partitions=None)
        runs = [
            await _delete_samples(database, cutoff, batch_rows),
            await _delete_rollups(database, cutoff, batch_rows),
        ]
        return Round(ran=True, partitions=None, deleted=tuple(run for run in runs if run.rows))
    async with _round_lock(database) as pg:
        if pg is None:
            return Round(ran=False, partitions=None)
        await partitions.make_ahead(pg, partitions.day_of(now), database=str(database.engine.url))
        dropped: list[Dropped] = []
        runs = []
        if cutoff is not None:
            dropped = await partitions.drop_before(pg, database, cutoff, audit=_audit_drop)
            runs.append(await _delete_rollups(database, cutoff, batch_rows))
        attached = sum(partition.attached for partition in await partitions.present(pg))
    return Round(True, attached, tuple(dropped), tuple(run for run in runs if run.rows))


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


def _span(start: datetime | None, end: datetime) -> dict[str, str | None]:
    """What an audit entry says was removed: [from, to)."""
    return {"from": start.isoformat() if start else None, "to": end.isoformat()}


async def _audit_drop(session: AsyncSession, gone: Dropped) -> None:
    start = _midnight(gone.day)
    await audit.record(
        session,
        actor=ACTOR,
        action="telemetry.retention.drop",
        target_type="table",
        target_id=gone.name,
        before={"rows": gone.rows, **_span(start, start + timedelta(days=1))},
    )


async def _delete_samples(database: Database, cutoff: date, batch_rows: int) -> Deleted:
    """Samples before ``cutoff`` (SQLite), device by device, each oldest first."""
    before, table = _midnight(cutoff), TelemetrySample
    keys: list[Key] = []
    oldest: datetime | None = None
    async with database.sessions() as session:
        device = await session.scalar(select(func.min(table.device_id)))
        while device is not None:
            first = await session.scalar(
                select(func.min(table.ts)).where(table.device_id == device)
            )
            if first is not None and first < before:
                keys.append((device,))
                oldest = min(oldest or first, first)
            device = await session.scalar(
                select(func.min(table.device_id)).where(table.device_id > device)
            )

    def old_rows(key: Key, limit: int) -> Delete:
        where = (table.device_id == key[0], table.ts < before)
        return _first_rows(
            table,
            where,
            limit,
            oldest_first=table.ts,
            unique=(table.device_id, table.stream, table.seq),
            sqlite=database.dialect == "sqlite",
        )

    run = _Run(database, table.__tablename__, before, batch_rows)
    return await run.delete(keys, old_rows, oldest)


async def _delete_rollups(database: Database, cutoff: date, batch_rows: int) -> Deleted:
    """Rollups of minutes before ``cutoff``, channel by channel, each oldest first."""
    before, table = _midnight(cutoff), TelemetryRollup
    keys: list[Key] = []
    oldest: datetime | None = None
    async with database.sessions() as session:
        device = await session.scalar(select(func.min(table.device_id)))
        while device is not None:
            of_device = table.device_id == device
            channel = await session.scalar(select(func.min(table.channel)).where(of_device))
            while channel is not None:
                first = await session.scalar(
                    select(func.min(table.minute)).where(of_device, table.channel == channel)
                )
                if first is not None and first < before:
                    keys.append((device, channel))
                    oldest = min(oldest or first, first)
                channel = await session.scalar(
                    select(func.min(table.channel)).where(of_device, table.channel > channel)
                )
            device = await session.scalar(
                select(func.min(table.device_id)).where(table.device_id > device)
            )

    def old_rows(key: Key, limit: int) -> Delete:
        where = (table.device_id == key[0], table.channel == key[1], table.minute < before)
        return _first_rows(
            table,
            where,
            limit,
            oldest_first=table.minute,
            unique=(table.device_id, table.channel, table.minute),
            sqlite=database.dialect == "sqlite",
        )

    run = _Run(database, table.__tablename__, before, batch_rows)
    return await run.delete(keys, old_rows, oldest)


def _first_rows(
    table: type[TelemetrySample | TelemetryRollup],
    where: tuple[ColumnElement[bool], ...],
    limit: int,
    *,
    oldest_first: InstrumentedAttribute[datetime],
    unique: tuple[InstrumentedAttribute[Any], ...],
    sqlite: bool,
) -> Delete:
    """Delete the first ``limit`` rows ``where`` holds, oldest first.

    SQLite names the rows by ``rowid``: by their ``unique`` key it took five times as long
    (30-50 ms against 4-15 ms for 1,000 rows), all of it under the write lock. PostgreSQL
    names them by their key (``ctid IN (…)`` may scan the whole table). Never correlated:
    the subquery reads the very table the statement deletes from.
    """

    def victims(*columns: InstrumentedAttribute[Any] | ColumnClause[int]) -> Select[Any]:
        found = select(*columns).select_from(table).where(*where)
        return found.order_by(oldest_first).limit(limit).correlate(None)

    if sqlite:
        rowid: ColumnClause[int] = literal_column("rowid", Integer)
        return delete(table).where(rowid.in_(victims(rowid)))
    return delete(table).where(tuple_(*unique).in_(victims(*unique)))


class _Run:
    """Deleting one table's old rows in transactions of at most ``batch_rows`` rows."""

    def __init__(self, database: Database, table: str, before: datetime, batch_rows: int) -> None:
        self._database, self._table, self._before = database, table, before
        self._batch_rows = batch_rows
        self.rows = self.batches = 0
        self.slowest_s = 0.0

    async def delete(self, keys: list[Key], old_rows: OldRows, oldest: datetime | None) -> Deleted:
        """Delete the old rows of ``keys``; audit the run in its last transaction."""
        pending = 0  # rows deleted in the open transaction
        started = 0.0
        async with self._database.sessions() as session:
            for key in keys:
                while True:
                    if pending == 0:
                        started = time.perf_counter()
                    asked = self._batch_rows - pending
                    # No ORM bookkeeping: its "fetch" returned every deleted key (twice the time).
                    statement = old_rows(key, asked).execution_options(synchronize_session=False)
                    result = cast(CursorResult[Any], await session.execute(statement))
                    pending += result.rowcount
                    if result.rowcount < asked:
                        break  # the key has no old rows left
                    await self._commit(session, pending, started)
                    pending = 0
            if self.rows + pending:
                if pending == 0:
                    started = time.perf_counter()
                await audit.record(
                    session,
                    actor=ACTOR,
                    action="telemetry.retention.delete",
                    target_type="table",
                    target_id=self._table,
                    before={"rows": self.rows + pending, **_span(oldest, self._before)},
                )
                await self._commit(session, pending, started, pause=False)
        return Deleted(self._table, self.rows, self.batches, oldest, self.slowest_s)

    async def _commit(
        self, session: AsyncSession, rows: int, started: float, *, pause: bool = True
    ) -> None:
        await session.commit()
        took = time.perf_counter() - started
        self.slowest_s = max(self.slowest_s, took)
        self.rows += rows
        self.batches += 1 if rows else 0
        if pause:
            await asyncio.sleep(max(MIN_PAUSE_S, took))
