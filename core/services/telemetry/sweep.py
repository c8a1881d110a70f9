"""Retention's deletes: a table's telemetry older than a time, in short transactions.

Rules:
- Samples and rollups have no index on time alone, so nothing scans for old rows. One
  query walks the keys (each device; each device's channel) by index probes, a loose index
  scan written as a recursive CTE in SQL both databases run, with each key's oldest time;
  each key's old rows then go through its index range.
- Quarantined samples and gaps go by ``received_at``, which is indexed: the whole table is
  one key, its oldest time one probe, and each batch the oldest received. Deleting them
  loses nothing ingest needs: the watermark's extension (``_RANGES_AFTER`` in
  ``postgres.py``, ``ranges_after`` in ``sqlite.py``) reads them only above a stream's
  watermark, and a station keeps every unacked sample and names its gaps in every replay
  batch until the ack passes them, so a row gone that still mattered is sent again.
- A transaction deletes at most BATCH_ROWS rows. On SQLite it then pauses as long as it
  took: an ingest commit waiting for the one write lock gets it first, so a sweep never
  takes over half the writes. The walk takes no write lock; only the deletes do.
- The run is audited in its last transaction: a run cut short is finished, and audited,
  by the next.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    CursorResult,
    Delete,
    Integer,
    String,
    column,
    delete,
    literal_column,
    select,
    text,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.expression import ColumnClause, TextualSelect

from core.db.engine import Database
from core.db.models import QuarantinedSample, TelemetryGap, TelemetryRollup, TelemetrySample
from core.db.types import UtcDateTime
from core.services import audit

ACTOR = "system"  # the audit's actor for what nobody asked for (as command deadlines)
# Rows one transaction deletes at most, measured on 2 busy cores. SQLite: 1,000 held the
# write lock ~15-20 ms (p50; p99 ~80 ms), and a writer committing every 10 ms saw its p99
# go from 20 ms to 50-60 ms meanwhile; 5,000 held it ~65 ms (p99 ~300 ms), that p99 went
# to 110 ms. PostgreSQL blocks nobody (old rows only): 5,000 swept a day of 1,000
# channels' rollups in 27 s, 1,000 in 48 s, 20,000 no faster.
BATCH_ROWS = {"sqlite": 1_000, "postgresql": 5_000}
MIN_PAUSE_S = 0.01  # the shortest pause after a SQLite batch

Key = tuple[str, ...]  # a device, or a device and a channel

# Each device and its oldest sample: min() over the index (device_id, ts), device by device.
_DEVICES = """
WITH RECURSIVE k(device_id) AS (
    SELECT min(device_id) FROM telemetry_samples
    UNION ALL
    SELECT (SELECT min(s.device_id) FROM telemetry_samples s WHERE s.device_id > k.device_id)
    FROM k WHERE k.device_id IS NOT NULL
)
SELECT device_id,
    (SELECT min(s.ts) FROM telemetry_samples s WHERE s.device_id = k.device_id) AS first
FROM k WHERE device_id IS NOT NULL
"""
# Each device's channel and its oldest minute, over the key (device_id, channel, minute):
# the next channel of the device, else the first of the next device. A row comparison
# ``(device_id, channel) > (…)`` would be one probe, but SQLite then scans the device.
_CHANNELS = """
WITH RECURSIVE k(device_id, channel) AS (
    SELECT d, (SELECT min(r.channel) FROM telemetry_rollups r WHERE r.device_id = d)
    FROM (SELECT min(device_id) AS d FROM telemetry_rollups) AS lowest
    UNION ALL
    SELECT
        CASE WHEN (SELECT min(r.channel) FROM telemetry_rollups r
                   WHERE r.device_id = k.device_id AND r.channel > k.channel) IS NULL
             THEN (SELECT min(r.device_id) FROM telemetry_rollups r WHERE r.device_id > k.device_id)
             ELSE k.device_id END,
        coalesce(
            (SELECT min(r.channel) FROM telemetry_rollups r
             WHERE r.device_id = k.device_id AND r.channel > k.channel),
            (SELECT min(r.channel) FROM telemetry_rollups r WHERE r.device_id =
                (SELECT min(n.device_id) FROM telemetry_rollups n WHERE n.device_id > k.device_id)))
    FROM k WHERE k.device_id IS NOT NULL
)
SELECT device_id, channel,
    (SELECT min(r.minute) FROM telemetry_rollups r
     WHERE r.device_id = k.device_id AND r.channel = k.channel) AS first
FROM k WHERE device_id IS NOT NULL
"""
# The oldest received, over the index on received_at: the one key of the whole table.
_RECEIVED = "SELECT min(received_at) AS first FROM {table}"
Model = type[TelemetrySample] | type[TelemetryRollup] | type[QuarantinedSample] | type[TelemetryGap]


@dataclass(frozen=True)
class Table:
    """What a sweep needs to know of a table."""

    model: Model
    key: tuple[InstrumentedAttribute[str], ...]  # none: the table's time index is its walk
    time: InstrumentedAttribute[datetime]
    unique: tuple[InstrumentedAttribute[Any], ...]  # names a row on PostgreSQL
    walk: TextualSelect  # each key, then its oldest time


def _walk(sql: str, *key: str) -> TextualSelect:
    """``sql`` read as the key's columns, then the key's oldest time."""
    return text(sql).columns(
        *(column(name, String()) for name in key), column("first", UtcDateTime())
    )


SAMPLES = Table(
    TelemetrySample,
    (TelemetrySample.device_id,),
    TelemetrySample.ts,
    (TelemetrySample.device_id, TelemetrySample.stream, TelemetrySample.seq),
    _walk(_DEVICES, "device_id"),
)
ROLLUPS = Table(
    TelemetryRollup,
    (TelemetryRollup.device_id, TelemetryRollup.channel),
    TelemetryRollup.minute,
    (TelemetryRollup.device_id, TelemetryRollup.channel, TelemetryRollup.minute),
    _walk(_CHANNELS, "device_id", "channel"),
)
QUARANTINE = Table(
    QuarantinedSample,
    (),
    QuarantinedSample.received_at,
    (QuarantinedSample.device_id, QuarantinedSample.stream, QuarantinedSample.seq),
    _walk(_RECEIVED.format(table="telemetry_quarantine")),
)
GAPS = Table(
    TelemetryGap,
    (),
    TelemetryGap.received_at,
    (TelemetryGap.device_id, TelemetryGap.stream, TelemetryGap.first_seq),
    _walk(_RECEIVED.format(table="telemetry_gaps")),
)


@dataclass(frozen=True)
class Deleted:
    """One table's sweep: rows removed, in how many transactions, and from when."""

    table: str
    rows: int
    batches: int
    oldest: datetime | None  # the oldest time removed: the sweep removed [oldest, before)
    slowest_s: float  # the longest batch, from its first delete to its commit


async def sweep(
    database: Database, table: Table, before: datetime, *, batch_rows: int | None = None
) -> Deleted:
    """Delete ``table``'s rows older than ``before``, at most ``batch_rows`` a transaction
    (BATCH_ROWS of the database unless given)."""
    async with database.sessions() as session:
        walked = (await session.execute(table.walk)).all()
    old = [(tuple(row[:-1]), row[-1]) for row in walked if row[-1] is not None and row[-1] < before]
    run = _Run(database, table, before, batch_rows or BATCH_ROWS[database.dialect])
    return await run.delete([key for key, _ in old], min((f for _, f in old), default=None))


def span(start: datetime | None, end: datetime) -> dict[str, str | None]:
    """What an audit entry says was removed: [from, to)."""
    return {"from": start.isoformat() if start else None, "to": end.isoformat()}


def _old_rows(table: Table, key: Key, before: datetime, limit: int, *, sqlite: bool) -> Delete:
    """Delete at most ``limit`` rows of ``key`` older than ``before``, through its index range.

    One key a statement: an OR of 100 keys' ranges took 4x as long at a day's 1,440 minutes
    a key (PostgreSQL bitmap-scans every range whole for each batch). SQLite names the rows
    by ``rowid``: by their unique key it took five times as long (30-50 ms against 4-15 ms
    for 1,000 rows), all of it under the write lock. PostgreSQL names them by their key
    (``ctid IN (…)`` may scan the whole table). Never correlated: the subquery reads the
    very table the statement deletes from.
    """
    of_key = (c == v for c, v in zip(table.key, key, strict=True))
    rowid: ColumnClause[int] = literal_column("rowid", Integer())
    named: tuple[Any, ...] = (rowid,) if sqlite else table.unique
    victims = select(*named).select_from(table.model).where(*of_key, table.time < before)
    victims = victims.order_by(table.time).limit(limit).correlate(None)
    target = rowid if sqlite else tuple_(*table.unique)
    # No ORM bookkeeping: its "fetch" returned every deleted key (twice the time).
    return (
        delete(table.model).where(target.in_(victims)).execution_options(synchronize_session=False)
    )


class _Run:
    """Deleting one table's old rows in transactions of at most ``batch_rows`` rows."""

    def __init__(self, database: Database, table: Table, before: datetime, batch_rows: int) -> None:
        self._database, self._table, self._before = database, table, before
        self._batch_rows = batch_rows
        self._sqlite = database.dialect == "sqlite"
        self.rows = self.batches = 0
        self.slowest_s = 0.0

    async def delete(self, keys: list[Key], oldest: datetime | None) -> Deleted:
        """Delete the old rows of ``keys``; audit the run in its last transaction."""
        name = self._table.model.__tablename__
        pending = 0  # rows deleted in the open transaction
        started = 0.0
        async with self._database.sessions() as session:
            for key in keys:
                while True:
                    if pending == 0:
                        started = time.perf_counter()
                    asked = self._batch_rows - pending
                    statement = _old_rows(
                        self._table, key, self._before, asked, sqlite=self._sqlite
                    )
                    removed = cast(CursorResult[Any], await session.execute(statement)).rowcount
                    pending += removed
                    if removed < asked:
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
                    target_id=name,
                    before={"rows": self.rows + pending, **span(oldest, self._before)},
                )
                await self._commit(session, pending, started, pause=False)
        return Deleted(name, self.rows, self.batches, oldest, self.slowest_s)

    async def _commit(
        self, session: AsyncSession, rows: int, started: float, *, pause: bool = True
    ) -> None:
        await session.commit()
        took = time.perf_counter() - started
        self.slowest_s = max(self.slowest_s, took)
        self.rows += rows
        self.batches += 1 if rows else 0
        if pause and self._sqlite:  # PostgreSQL's deletes lock only old rows nobody writes
            await asyncio.sleep(max(MIN_PAUSE_S, took))
