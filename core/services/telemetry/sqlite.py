"""SQLite's side of storing telemetry: batched statements through SQLAlchemy's session.

SQLite has one writer at a time, so this side finds out before inserting which samples of
a batch are new (stored nowhere yet, above their stream's watermark): nothing can come
between that look and the insert.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, tuple_, union, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import (
    IngestHour,
    QuarantinedSample,
    TelemetryGap,
    TelemetryRollup,
    TelemetrySample,
    TelemetryStream,
)
from core.services.telemetry.rollups import Minute, MinuteKey, SampleKey, merge
from core.services.telemetry.writer import (
    HOUR_COLUMNS,
    QUARANTINE_COLUMNS,
    SAMPLE_COLUMNS,
    NewGap,
    Range,
    StreamKey,
    Watermark,
)

_SQLITE_INSERT = (
    f"INSERT INTO telemetry_samples ({', '.join(SAMPLE_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(SAMPLE_COLUMNS))})"
)
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy's DateTime stores on SQLite (UTC here)
_ROLLUP_KEYS = 300  # minutes looked up a statement: 3 variables each, far under SQLite's cap


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A sample row as UtcDateTime, Readings and Boolean store it on SQLite."""
    device_id, stream, seq, ts, readings, replayed, at = row
    return (
        device_id,
        stream,
        seq,
        ts.astimezone(UTC).strftime(_SQLITE_TIME),
        readings,
        int(replayed),
        at.astimezone(UTC).strftime(_SQLITE_TIME),
    )


class SqliteWriter:
    """SQLite through SQLAlchemy: one writer at a time, so no lock order is needed."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def insert_samples(self, rows: list[tuple[Any, ...]]) -> set[SampleKey]:
        """Batched insert of the new samples, values in the form the column types store.

        The ORM's per-row processing made SQLite ingest ~7k rows/s; the driver's own
        executemany over rows converted here does well over 100k.
        """
        new = await self._new(rows)
        if new:
            connection = await self._session.connection()
            await connection.exec_driver_sql(_SQLITE_INSERT, [_sqlite_row(row) for row in new])
        return {(row[0], row[1], row[2]) for row in new}

    async def _new(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """The rows whose seq is stored nowhere yet and above its stream's watermark."""
        spans: dict[StreamKey, tuple[int, int]] = {}
        for device_id, stream, seq, *_ in rows:
            low, high = spans.get((device_id, stream), (seq, seq))
            spans[(device_id, stream)] = (min(low, seq), max(high, seq))
        # A write first: SQLite's write lock, waited for and held to the commit, so no other
        # writer stores a seq between this look and the insert. (A read first would take a
        # snapshot that a concurrent commit makes stale: SQLite then refuses the write.)
        await self._session.execute(
            sqlite_insert(TelemetryStream).on_conflict_do_nothing(),
            [{"device_id": d, "stream": s, "acked_seq": 0} for d, s in spans],
        )
        acked: dict[StreamKey, int] = {}
        taken: set[tuple[str, str, int]] = set()
        for (device_id, stream), (low, high) in spans.items():
            mark = await self._session.scalar(
                select(TelemetryStream.acked_seq).where(
                    TelemetryStream.device_id == device_id, TelemetryStream.stream == stream
                )
            )
            acked[(device_id, stream)] = mark or 0
            stored = await self._session.scalars(
                select(TelemetrySample.seq).where(
                    TelemetrySample.device_id == device_id,
                    TelemetrySample.stream == stream,
                    TelemetrySample.seq.between(max(low, (mark or 0) + 1), high),
                )
            )
            taken.update((device_id, stream, seq) for seq in stored)
        return [row for row in rows if row[2] > acked[row[:2]] and row[:3] not in taken]

    async def add_rollups(self, minutes: dict[MinuteKey, Minute]) -> None:
        """Read the stored minutes, merge, write back: one writer, so nothing comes between."""
        rolled = dict(minutes)
        keys = list(rolled)
        for low in range(0, len(keys), _ROLLUP_KEYS):
            chunk = keys[low : low + _ROLLUP_KEYS]
            key = tuple_(TelemetryRollup.device_id, TelemetryRollup.channel, TelemetryRollup.minute)
            stored = await self._session.scalars(select(TelemetryRollup).where(key.in_(chunk)))
            for row in stored:
                at = (row.device_id, row.channel, row.minute)
                old = Minute(
                    row.min, row.max, row.sum, row.count, row.replayed, row.last_ts, row.last_kind
                )
                rolled[at] = merge(old, rolled[at])
        statement = sqlite_insert(TelemetryRollup)
        columns = ("min", "max", "sum", "count", "replayed", "last_ts", "last_kind")
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=["device_id", "channel", "minute"],
                set_={c: statement.excluded[c] for c in columns},
            ),
            [
                {"device_id": d, "channel": c, "minute": m, **minute._asdict()}
                for (d, c, m), minute in rolled.items()
            ],
        )

    async def insert_quarantined(self, rows: list[tuple[Any, ...]]) -> set[SampleKey]:
        """Batched insert, duplicates ignored; the new rows' keys come back."""
        statement = sqlite_insert(QuarantinedSample).on_conflict_do_nothing()
        result = await self._session.execute(
            statement.returning(
                QuarantinedSample.device_id, QuarantinedSample.stream, QuarantinedSample.seq
            ),
            [dict(zip(QUARANTINE_COLUMNS, row, strict=True)) for row in rows],
        )
        return {(d, s, q) for d, s, q in result.all()}

    async def lock_streams(self, keys: list[StreamKey], now: datetime) -> dict[StreamKey, int]:
        """The insert takes SQLite's write lock, held to the commit."""
        await self._session.execute(
            sqlite_insert(TelemetryStream).on_conflict_do_nothing(),
            [{"device_id": d, "stream": s, "acked_seq": 0, "updated_at": now} for d, s in keys],
        )
        query = select(TelemetryStream.device_id, TelemetryStream.stream, TelemetryStream.acked_seq)
        query = query.where(tuple_(TelemetryStream.device_id, TelemetryStream.stream).in_(keys))
        return {(d, s): acked for d, s, acked in (await self._session.execute(query)).all()}

    async def insert_gaps(self, rows: list[tuple[Any, ...]]) -> list[NewGap]:
        """Batched insert, duplicates ignored; the new gaps come back."""
        columns = ("device_id", "stream", "first_seq", "last_seq", "reason", "received_at")
        statement = sqlite_insert(TelemetryGap).on_conflict_do_nothing()
        result = await self._session.execute(
            statement.returning(
                TelemetryGap.device_id, TelemetryGap.first_seq, TelemetryGap.last_seq
            ),
            [dict(zip(columns, row, strict=True)) for row in rows],
        )
        return [(d, first, last) for d, first, last in result.all()]

    async def ranges_after(
        self, lows: dict[StreamKey, int], span: int
    ) -> dict[StreamKey, list[Range]]:
        """One query over the three tables per stream (SQLite round trips are in-process)."""
        found: dict[StreamKey, list[Range]] = {}
        for (device_id, stream), low in lows.items():
            high = low + span
            stored = select(TelemetrySample.seq, TelemetrySample.seq).where(
                TelemetrySample.device_id == device_id,
                TelemetrySample.stream == stream,
                TelemetrySample.seq > low,
                TelemetrySample.seq <= high,
            )
            held = select(QuarantinedSample.seq, QuarantinedSample.seq).where(
                QuarantinedSample.device_id == device_id,
                QuarantinedSample.stream == stream,
                QuarantinedSample.seq > low,
                QuarantinedSample.seq <= high,
            )
            gaps = select(TelemetryGap.first_seq, TelemetryGap.last_seq).where(
                TelemetryGap.device_id == device_id,
                TelemetryGap.stream == stream,
                TelemetryGap.last_seq > low,
                TelemetryGap.first_seq <= high,
            )
            result = await self._session.execute(union(stored, held, gaps))
            found[(device_id, stream)] = [(int(a), int(b)) for a, b in result.all()]
        return found

    async def set_watermarks(self, marks: list[Watermark], now: datetime) -> None:
        """One update per stream."""
        for mark in marks:
            await self._session.execute(
                update(TelemetryStream)
                .where(
                    TelemetryStream.device_id == mark.device_id,
                    TelemetryStream.stream == mark.stream,
                )
                .values(acked_seq=mark.acked_seq, updated_at=now)
            )

    async def add_hours(self, rows: list[tuple[Any, ...]]) -> None:
        """One additive upsert."""
        statement = sqlite_insert(IngestHour)
        added = ("stored", "replayed", "quarantined", "dropped")
        await self._session.execute(
            statement.on_conflict_do_update(
                index_elements=["device_id", "hour"],
                set_={c: getattr(IngestHour, c) + statement.excluded[c] for c in added},
            ),
            [dict(zip(HOUR_COLUMNS, row, strict=True)) for row in rows],
        )
