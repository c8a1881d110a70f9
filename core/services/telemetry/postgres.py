"""PostgreSQL's side of storing telemetry: asyncpg directly, on a pooled connection.

SQLAlchemy costs about a millisecond of CPU a statement; at a thousand messages a second
that is the whole budget. So ingest borrows a connection from the engine's pool and runs
its own asyncpg transaction on it: every statement is one round trip, nothing more.

Samples are COPYed straight into ``telemetry_samples``, in key order, under a savepoint:
when every one is new, as in a steady stream, that is all the storing there is (a raw
COPY's speed). When some are stored already (a resend after a lost ack), the COPY fails
on the key, the savepoint undoes it, and the samples go the careful way: COPY into a
staging table, then ``INSERT … ON CONFLICT DO NOTHING``.
The day partitions the samples need are made on that connection before the transaction
begins (``partitions.ensure``): creating one commits on its own and locks the parent.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any

import asyncpg

from core.db.engine import Database
from core.services.telemetry import partitions
from core.services.telemetry.rollups import Minute, MinuteKey, SampleKey
from core.services.telemetry.writer import (
    QUARANTINE_COLUMNS,
    SAMPLE_COLUMNS,
    Range,
    StreamKey,
    Watermark,
)

# A rollup's columns and their types: the key, then Minute's fields in order.
_ROLLUP_COLUMNS = {
    "device_id": "text",
    "channel": "text",
    "minute": "timestamptz",
    "min": "numeric",
    "max": "numeric",
    "sum": "numeric",
    "count": "bigint",
    "replayed": "bigint",
    "last_ts": "timestamptz",
    "last_kind": "text",
}
# Samples a commit needs before the straight COPY pays: it takes two round trips more (the
# watermarks, the savepoint), a staging copy fewer.
DIRECT_MIN_ROWS = 50
_STAGING = (
    "CREATE TEMP TABLE IF NOT EXISTS telemetry_staging "
    "(LIKE telemetry_samples INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
)
# The primary key holds ts (the partition key): a seq at or below its stream's watermark is
# skipped, so one resent with another ts is not stored twice. The watermark is read without
# a lock: it only grows, and the streams are locked later, in key order.
_ACKED = (
    "SELECT w.device_id, w.stream, w.acked_seq FROM telemetry_streams w "
    "JOIN unnest($1::text[], $2::text[]) AS k(d, s) ON w.device_id = k.d AND w.stream = k.s"
)
# The careful way. RETURNING names the samples this transaction stored: those alone are
# rolled up. Key order, byte-wise as the fast path sorts in Python: two writers of the same
# rows wait for each other, never deadlock.
_INSERT = (
    f"INSERT INTO telemetry_samples ({', '.join(SAMPLE_COLUMNS)}) "
    f"SELECT {', '.join('n.' + c for c in SAMPLE_COLUMNS)} FROM telemetry_staging n "
    "LEFT JOIN telemetry_streams w ON w.device_id = n.device_id AND w.stream = n.stream "
    "WHERE n.seq > coalesce(w.acked_seq, 0) "
    'ORDER BY n.device_id COLLATE "C", n.stream COLLATE "C", n.seq, n.ts '
    "ON CONFLICT DO NOTHING RETURNING device_id, stream, seq"
)
# The new minutes merge into the stored ones, exactly (NUMERIC), in key order: writers of
# the same minutes wait for each other, never deadlock.
_ROLLUP = (
    f"INSERT INTO telemetry_rollups AS r ({', '.join(_ROLLUP_COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"${n}::{t}[]" for n, t in enumerate(_ROLLUP_COLUMNS.values(), 1))
    + f") AS u({', '.join(_ROLLUP_COLUMNS)}) ORDER BY device_id, channel, minute "
    "ON CONFLICT (device_id, channel, minute) DO UPDATE SET "
    "min = least(r.min, excluded.min), max = greatest(r.max, excluded.max), "
    "sum = r.sum + excluded.sum, count = r.count + excluded.count, "
    "replayed = r.replayed + excluded.replayed, "
    "last_ts = greatest(r.last_ts, excluded.last_ts), "
    "last_kind = CASE WHEN excluded.last_ts >= r.last_ts "
    "THEN excluded.last_kind ELSE r.last_kind END"
)
_QUARANTINE = (
    f"INSERT INTO telemetry_quarantine ({', '.join(QUARANTINE_COLUMNS)}) "
    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
)
# The upsert locks each stream row (in key order) and returns its watermark in one trip.
_LOCK = (
    "INSERT INTO telemetry_streams AS s (device_id, stream, acked_seq, updated_at) "
    "SELECT d, st, 0, $3 FROM unnest($1::text[], $2::text[]) AS k(d, st) ORDER BY d, st "
    "ON CONFLICT (device_id, stream) DO UPDATE SET acked_seq = s.acked_seq "
    "RETURNING device_id, stream, acked_seq"
)
# Every stream's window at once: one round trip however many streams a commit touches.
_RANGES_AFTER = (
    "WITH k(d, s, low) AS (SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[])) "
    "SELECT k.d, k.s, t.seq AS first, t.seq AS last FROM k JOIN telemetry_samples t "
    "ON t.device_id = k.d AND t.stream = k.s AND t.seq > k.low AND t.seq <= k.low + $4 "
    "UNION SELECT k.d, k.s, q.seq, q.seq FROM k JOIN telemetry_quarantine q "
    "ON q.device_id = k.d AND q.stream = k.s AND q.seq > k.low AND q.seq <= k.low + $4 "
    "UNION SELECT k.d, k.s, g.first_seq, g.last_seq FROM k JOIN telemetry_gaps g "
    "ON g.device_id = k.d AND g.stream = k.s AND g.last_seq > k.low "
    "AND g.first_seq <= k.low + $4"
)
_GAPS = (
    "INSERT INTO telemetry_gaps (device_id, stream, first_seq, last_seq, reason, received_at) "
    "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
)
_SET = (
    "UPDATE telemetry_streams SET acked_seq = $3, updated_at = $4 "
    "WHERE device_id = $1 AND stream = $2"
)


_staged: weakref.WeakSet[Any] = weakref.WeakSet()  # connections that have the staging table


@asynccontextmanager
async def postgres_writer(
    database: Database, days: Iterable[date]
) -> AsyncIterator[PostgresWriter]:
    """A writer in an asyncpg transaction on a pooled connection; commits on success.

    ``days`` are those of the samples it will store: their partitions are made first.
    """
    async with database.engine.connect() as connection:
        raw = await connection.get_raw_connection()
        pg = raw.driver_connection
        assert pg is not None
        await partitions.ensure(pg, days, database=str(database.engine.url))
        # SQLAlchemy began nothing on this connection, so it leaves our transaction alone.
        async with pg.transaction():
            if pg not in _staged:
                await pg.execute(_STAGING)  # a temp table lives as long as its connection
                _staged.add(pg)
            yield PostgresWriter(pg)


class PostgresWriter:
    """The store statements on the session's asyncpg connection."""

    def __init__(self, connection: Any) -> None:
        self._pg = connection

    async def insert_samples(self, rows: list[tuple[Any, ...]]) -> set[SampleKey]:
        """COPY the samples above their watermarks; if some are stored already, the careful
        way: COPY into the staging table, then insert what is new."""
        if len(rows) < DIRECT_MIN_ROWS:
            return await self._insert_carefully(rows)
        streams = list({(row[0], row[1]) for row in rows})
        acked = {
            (r[0], r[1]): r[2]
            for r in await self._pg.fetch(_ACKED, [d for d, _ in streams], [s for _, s in streams])
        }
        # Python's str order is the byte order of UTF-8: COLLATE "C", as _INSERT sorts.
        fresh = sorted(row for row in rows if row[2] > acked.get((row[0], row[1]), 0))
        if not fresh:
            return set()
        try:
            async with self._pg.transaction():  # a savepoint
                await self._pg.copy_records_to_table(
                    "telemetry_samples", records=fresh, columns=SAMPLE_COLUMNS
                )
        except asyncpg.UniqueViolationError:
            return await self._insert_carefully(fresh)
        return {(row[0], row[1], row[2]) for row in fresh}

    async def _insert_carefully(self, rows: list[tuple[Any, ...]]) -> set[SampleKey]:
        """COPY into the staging table, then insert what is new; its keys come back."""
        await self._pg.copy_records_to_table(
            "telemetry_staging", records=rows, columns=SAMPLE_COLUMNS
        )
        return {(r[0], r[1], r[2]) for r in await self._pg.fetch(_INSERT)}

    async def add_rollups(self, minutes: dict[MinuteKey, Minute]) -> None:
        """One upsert of every minute, its columns as arrays."""
        rows = [(*key, *minute) for key, minute in minutes.items()]
        await self._pg.execute(_ROLLUP, *(list(column) for column in zip(*rows, strict=True)))

    async def insert_quarantined(self, rows: list[tuple[Any, ...]]) -> None:
        """Quarantine is rare: a plain batched insert."""
        await self._pg.executemany(_QUARANTINE, rows)

    async def lock_streams(self, keys: list[StreamKey], now: datetime) -> dict[StreamKey, int]:
        """Upsert-and-lock every stream row, in key order."""
        records = await self._pg.fetch(_LOCK, [d for d, _ in keys], [s for _, s in keys], now)
        return {(r["device_id"], r["stream"]): r["acked_seq"] for r in records}

    async def insert_gaps(self, rows: list[tuple[Any, ...]]) -> None:
        """Gaps are rare: a plain batched insert."""
        await self._pg.executemany(_GAPS, rows)

    async def ranges_after(
        self, lows: dict[StreamKey, int], span: int
    ) -> dict[StreamKey, list[Range]]:
        """Stored and quarantined seqs in (low, low + span], and gaps reaching past low."""
        keys = list(lows)
        records = await self._pg.fetch(
            _RANGES_AFTER, [d for d, _ in keys], [s for _, s in keys], list(lows.values()), span
        )
        found: dict[StreamKey, list[Range]] = {}
        for record in records:
            found.setdefault((record[0], record[1]), []).append((record[2], record[3]))
        return found

    async def set_watermarks(self, marks: list[Watermark], now: datetime) -> None:
        """One batched update."""
        await self._pg.executemany(_SET, [(m.device_id, m.stream, m.acked_seq, now) for m in marks])
