"""Storing telemetry batches exactly once and advancing each stream's ack watermark.

One call stores many batches in one transaction. The streams' watermark rows are locked
first (in a fixed order, so replicas never deadlock), then the samples go in (COPY into a
staging table and ``INSERT … ON CONFLICT DO NOTHING`` on PostgreSQL, a batched insert on
SQLite), then each watermark moves up to the highest seq below which nothing is missing.
Under the lock the stored watermark is always the contiguous one, so it only needs to look
past the new samples, for seqs that arrived out of order earlier.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, tuple_, union, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import QuarantinedSample, Telemetry, TelemetryStream
from core.protocol.telemetry import Batch

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EXTEND_WINDOW = 10_000  # seqs read per look past the new samples; a replay batch is far smaller
COLUMNS = (
    "device_id",
    "stream",
    "seq",
    "channel",
    "ts",
    "value_int",
    "value_dec",
    "value_bool",
    "replayed",
    "received_at",
)
StreamKey = tuple[str, str]


@dataclass(frozen=True)
class Watermark:
    """A stream's ack watermark after a commit: every seq up to ``acked_seq`` is stored."""

    device_id: str
    stream: str
    acked_seq: int


@dataclass(frozen=True)
class Stored:
    """What one ``store`` call wrote."""

    rows: int  # telemetry rows offered (duplicates are skipped by the database)
    quarantined: int
    watermarks: tuple[Watermark, ...]


def timestamp(ms: int) -> datetime:
    """A protocol timestamp (ms since the epoch) as an exact UTC datetime."""
    return EPOCH + timedelta(milliseconds=ms)


def rows_of(batches: Iterable[Batch], received_at: datetime) -> list[tuple[Any, ...]]:
    """The telemetry rows of ``batches``, in COLUMNS order, one per channel value."""
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    for batch in batches:
        replayed = batch.origin == "replay"
        for sample in batch.samples:
            ts = timestamp(sample.ts)
            for channel, value in sample.values.items():
                if isinstance(value, bool):
                    typed: tuple[Any, Any, Any] = (None, None, value)
                elif isinstance(value, Decimal):
                    typed = (None, value, None)
                else:
                    typed = (value, None, None)
                append(
                    (
                        batch.device_id,
                        batch.stream,
                        sample.seq,
                        channel,
                        ts,
                        *typed,
                        replayed,
                        received_at,
                    )
                )
    return rows


async def store(session: AsyncSession, batches: Sequence[Batch]) -> Stored:
    """Store ``batches`` once each and return the watermark of every stream they touch."""
    received_at = datetime.now(UTC)
    seqs: dict[StreamKey, set[int]] = defaultdict(set)
    for batch in batches:
        key = (batch.device_id, batch.stream)
        seqs[key].update(sample.seq for sample in batch.samples)
        seqs[key].update(sample.seq for sample in batch.quarantined)
    keys = sorted(seqs)  # one lock order for every writer
    acked = await _lock_streams(session, keys, received_at)
    rows = rows_of(batches, received_at)
    if _postgres(session):
        await _copy(session, rows)
    elif rows:
        await session.execute(
            sqlite_insert(Telemetry).on_conflict_do_nothing(),
            [dict(zip(COLUMNS, row, strict=True)) for row in rows],
        )
    quarantined = await _quarantine(session, batches, received_at)
    watermarks = []
    for key in keys:
        old = acked[key]
        new = _contiguous(old, seqs[key])
        if new > old:
            new = await _extend(session, key, new)
            await session.execute(
                update(TelemetryStream)
                .where(TelemetryStream.device_id == key[0], TelemetryStream.stream == key[1])
                .values(acked_seq=new, updated_at=received_at)
            )
        watermarks.append(Watermark(key[0], key[1], new))
    return Stored(len(rows), quarantined, tuple(watermarks))


def _postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _contiguous(acked: int, seqs: set[int]) -> int:
    while acked + 1 in seqs:
        acked += 1
    return acked


async def _lock_streams(
    session: AsyncSession, keys: list[StreamKey], now: datetime
) -> dict[StreamKey, int]:
    """Create missing stream rows, then lock them all and read their watermarks."""
    postgres = _postgres(session)
    insert = pg_insert if postgres else sqlite_insert
    await session.execute(
        insert(TelemetryStream).on_conflict_do_nothing(),
        [{"device_id": d, "stream": s, "acked_seq": 0, "updated_at": now} for d, s in keys],
    )
    query = select(TelemetryStream.device_id, TelemetryStream.stream, TelemetryStream.acked_seq)
    query = query.where(tuple_(TelemetryStream.device_id, TelemetryStream.stream).in_(keys))
    if postgres:
        query = query.order_by(TelemetryStream.device_id, TelemetryStream.stream).with_for_update()
    result = await session.execute(query)
    return {(d, s): acked for d, s, acked in result.all()}


async def _copy(session: AsyncSession, rows: list[tuple[Any, ...]]) -> None:
    """COPY the rows into a per-connection staging table, then insert the new ones."""
    if not rows:
        return
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    pg = raw.driver_connection
    assert pg is not None
    await pg.execute(
        "CREATE TEMP TABLE IF NOT EXISTS telemetry_staging "
        "(LIKE telemetry INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    await pg.copy_records_to_table("telemetry_staging", records=rows, columns=COLUMNS)
    columns = ", ".join(COLUMNS)
    await pg.execute(
        f"INSERT INTO telemetry ({columns}) SELECT {columns} FROM telemetry_staging "
        "ON CONFLICT DO NOTHING"
    )


async def _quarantine(session: AsyncSession, batches: Sequence[Batch], now: datetime) -> int:
    values = [
        {
            "device_id": batch.device_id,
            "stream": batch.stream,
            "seq": sample.seq,
            "ts": timestamp(sample.ts),
            "reason": sample.reason.value,
            "detail": sample.detail[:512],
            "raw": sample.raw,
            "received_at": now,
        }
        for batch in batches
        for sample in batch.quarantined
    ]
    if values:
        insert = pg_insert if _postgres(session) else sqlite_insert
        await session.execute(insert(QuarantinedSample).on_conflict_do_nothing(), values)
    return len(values)


async def _extend(session: AsyncSession, key: StreamKey, acked: int) -> int:
    """Move ``acked`` past seqs stored earlier out of order, until the first gap."""
    device_id, stream = key
    while True:
        stored = (
            select(Telemetry.seq)
            .where(
                Telemetry.device_id == device_id,
                Telemetry.stream == stream,
                Telemetry.seq > acked,
                Telemetry.seq <= acked + EXTEND_WINDOW,
            )
            .distinct()
        )
        held = select(QuarantinedSample.seq).where(
            QuarantinedSample.device_id == device_id,
            QuarantinedSample.stream == stream,
            QuarantinedSample.seq > acked,
            QuarantinedSample.seq <= acked + EXTEND_WINDOW,
        )
        found = set((await session.execute(union(stored, held))).scalars())
        new = _contiguous(acked, found)
        if new < acked + EXTEND_WINDOW:
            return new
        acked = new


async def watermark(session: AsyncSession, device_id: str, stream: str) -> int:
    """The stored ack watermark of one stream (0 if it has never been seen)."""
    result = await session.execute(
        select(func.coalesce(func.max(TelemetryStream.acked_seq), 0)).where(
            TelemetryStream.device_id == device_id, TelemetryStream.stream == stream
        )
    )
    return int(result.scalar_one())
