"""PostgreSQL's side of storing telemetry: asyncpg directly, on a bare pooled connection.

SQLAlchemy costs about a millisecond of CPU a statement; at a thousand messages a second
that is the whole budget. So ingest borrows a bare asyncpg connection
(``Database.raw_connection``: no ping as it is lent, no reset as it comes back) and runs its
own transaction on it: every statement is one round trip, nothing more.

Many samples are COPYed straight into ``telemetry_samples``, in key order: when every one
is new, as in a steady stream, that is all the storing there is (a raw COPY's speed). When
some were stored already (a resend after a lost ack), the COPY fails on the key, or the
stream's watermark, read under its lock, covers a seq it copied; either way the writer
raises ``Resent`` and ``store`` does the whole transaction again the careful way, as a few
samples always go: one ``INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING`` that
skips seqs at or below the watermark, the columns as arrays. A round trip costs far more
here than a redone transaction once in a while: neither way adds one.

The day partitions the samples need are made on that connection before the transaction
begins (``partitions.ensure``): creating one commits on its own and locks the parent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any

import asyncpg

from core.db.engine import Database
from core.services.telemetry import partitions
from core.services.telemetry.rollups import Minute, MinuteKey, SampleKey
from core.services.telemetry.writer import (
    HOUR_COLUMNS,
    QUARANTINE_COLUMNS,
    SAMPLE_COLUMNS,
    NewGap,
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
# Samples a commit needs before the straight COPY pays: COPY takes a round trip more than
# the INSERT, but sends rows cheaper than arrays, and the database stores them with less work.
DIRECT_MIN_ROWS = 50
_SAMPLE_TYPES = ("text", "text", "bigint", "timestamptz", "jsonb", "boolean", "timestamptz")
# The careful way. The primary key holds ts (the partition key): a seq at or below its
# stream's watermark is skipped, so one resent with another ts is not stored twice. The
# watermark is read without a lock: it only grows, and the streams are locked later, in key
# order. RETURNING names the samples this transaction stored: those alone are rolled up.
# Key order, byte-wise as the straight COPY sorts in Python: two writers of the same rows
# wait for each other, never deadlock.
_INSERT = (
    f"INSERT INTO telemetry_samples ({', '.join(SAMPLE_COLUMNS)}) "
    f"SELECT {', '.join('n.' + c for c in SAMPLE_COLUMNS)} FROM unnest("
    + ", ".join(f"${n}::{t}[]" for n, t in enumerate(_SAMPLE_TYPES, 1))
    + f") AS n({', '.join(SAMPLE_COLUMNS)}) "
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
# Quarantine and gaps are rare: the columns as arrays, in key order (two writers of the same
# rows never deadlock), and RETURNING names what was new (a resend's rows are skipped), for
# the hour's counts.
_QUARANTINE_TYPES = ("text", "text", "bigint", "timestamptz", "text", "text", "text", "timestamptz")
_QUARANTINE = (
    f"INSERT INTO telemetry_quarantine ({', '.join(QUARANTINE_COLUMNS)}) "
    "SELECT * FROM unnest("
    + ", ".join(f"${n}::{t}[]" for n, t in enumerate(_QUARANTINE_TYPES, 1))
    + ") ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING RETURNING device_id, stream, seq"
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
    "SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::text[], "
    "$6::timestamptz[]) ORDER BY 1, 2, 3 ON CONFLICT DO NOTHING "
    "RETURNING device_id, first_seq, last_seq"
)
# Additive: each commit adds what it newly did to its devices' hour. Key order, as _LOCK's:
# writers of the same device wait for each other, never deadlock.
_HOURS = (
    f"INSERT INTO ingest_hours AS h ({', '.join(HOUR_COLUMNS)}) "
    "SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::bigint[], $4::bigint[], "
    "$5::bigint[], $6::bigint[]) AS n(d, hr, s, r, q, x) ORDER BY d, hr "
    "ON CONFLICT (device_id, hour) DO UPDATE SET stored = h.stored + excluded.stored, "
    "replayed = h.replayed + excluded.replayed, "
    "quarantined = h.quarantined + excluded.quarantined, dropped = h.dropped + excluded.dropped"
)
_SET = (
    "UPDATE telemetry_streams SET acked_seq = $3, updated_at = $4 "
    "WHERE device_id = $1 AND stream = $2"
)


class Resent(Exception):
    """Samples a straight COPY stored were stored before: do it all again, carefully."""


@asynccontextmanager
async def postgres_writer(
    database: Database, days: Iterable[date], *, straight: bool = True
) -> AsyncIterator[PostgresWriter]:
    """A writer in an asyncpg transaction on a pooled connection; commits on success.

    ``days`` are those of the samples it will store: their partitions are made first.
    ``straight``: COPY many samples straight into the table (it may raise ``Resent``).
    """
    async with database.raw_connection() as pg:
        await partitions.ensure(pg, days, database=str(database.engine.url))
        async with pg.transaction():
            yield PostgresWriter(pg, straight=straight)


class PostgresWriter:
    """The store statements on the session's asyncpg connection."""

    def __init__(self, connection: Any, *, straight: bool) -> None:
        self._pg = connection
        self._straight = straight
        self._copied: dict[StreamKey, int] = {}  # the lowest seq COPYed of each stream

    async def insert_samples(self, rows: list[tuple[Any, ...]]) -> set[SampleKey]:
        """COPY many samples straight (``lock_streams`` checks the watermarks it skipped);
        a few, or after ``Resent``, the careful way."""
        if not self._straight or len(rows) < DIRECT_MIN_ROWS:
            return await self._insert_carefully(rows)
        rows = sorted(rows)  # str order is UTF-8's byte order: COLLATE "C", as _INSERT's
        try:
            await self._pg.copy_records_to_table(
                "telemetry_samples", records=rows, columns=SAMPLE_COLUMNS
            )
        except asyncpg.UniqueViolationError as error:
            raise Resent from error
        for device_id, stream, seq, *_ in reversed(rows):  # the lowest seq last
            self._copied[(device_id, stream)] = seq
        return {(row[0], row[1], row[2]) for row in rows}

    async def _insert_carefully(self, rows: list[tuple[Any, ...]]) -> set[SampleKey]:
        """Insert what is new, the columns as arrays; its keys come back."""
        columns = (list(column) for column in zip(*rows, strict=True))
        return {(r[0], r[1], r[2]) for r in await self._pg.fetch(_INSERT, *columns)}

    async def add_rollups(self, minutes: dict[MinuteKey, Minute]) -> None:
        """One upsert of every minute, its columns as arrays."""
        rows = [(*key, *minute) for key, minute in minutes.items()]
        await self._pg.execute(_ROLLUP, *(list(column) for column in zip(*rows, strict=True)))

    async def insert_quarantined(self, rows: list[tuple[Any, ...]]) -> set[SampleKey]:
        """One insert, the columns as arrays; the keys of the new rows come back."""
        columns = (list(column) for column in zip(*rows, strict=True))
        return {(r[0], r[1], r[2]) for r in await self._pg.fetch(_QUARANTINE, *columns)}

    async def lock_streams(self, keys: list[StreamKey], now: datetime) -> dict[StreamKey, int]:
        """Upsert-and-lock every stream row, in key order; ``Resent`` if a straight COPY
        stored a seq the watermark had passed (a resend, perhaps with another ts)."""
        records = await self._pg.fetch(_LOCK, [d for d, _ in keys], [s for _, s in keys], now)
        acked = {(r["device_id"], r["stream"]): r["acked_seq"] for r in records}
        if any(low <= acked[key] for key, low in self._copied.items()):
            raise Resent
        return acked

    async def insert_gaps(self, rows: list[tuple[Any, ...]]) -> list[NewGap]:
        """One insert, the columns as arrays; the new gaps come back."""
        columns = (list(column) for column in zip(*rows, strict=True))
        return [(r[0], r[1], r[2]) for r in await self._pg.fetch(_GAPS, *columns)]

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

    async def add_hours(self, rows: list[tuple[Any, ...]]) -> None:
        """One upsert of every device's hour, its columns as arrays."""
        await self._pg.execute(_HOURS, *(list(column) for column in zip(*rows, strict=True)))
