"""Storing telemetry batches exactly once and advancing each stream's ack watermark.

One call stores many batches in one transaction. The samples go in first, one row each
with its channel values together (COPY into a staging table and ``INSERT … ON CONFLICT DO
NOTHING`` on PostgreSQL, a batched insert on SQLite); the database says which samples it
newly stored, and those update their minute rollups (``rollups``) in the same transaction,
so a rollup is never behind its samples and a resent sample never counts twice. Then the
streams' watermark rows are locked (in a fixed order, so writers never deadlock) until the
commit, and each watermark moves up to the highest seq below which nothing is missing.
Under the lock the stored watermark is always the contiguous one, so it only needs to look
past the new samples, for seqs that arrived out of order earlier. Last, what the transaction
newly stored, quarantined and noted as dropped is added to its devices' hour of receipt
(``ingest_hours``), one statement for them all.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.db.models import TelemetryGap, TelemetryStream
from core.db.types import readings_json
from core.protocol.telemetry import Batch
from core.services import devices
from core.services.actor import Actor
from core.services.telemetry import ingest_hours, rollups
from core.services.telemetry.postgres import Resent, postgres_writer
from core.services.telemetry.rollups import SampleKey
from core.services.telemetry.sqlite import SqliteWriter
from core.services.telemetry.writer import Range, StreamKey, Watermark, Writer

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS_PER_DAY = 86_400_000
T = TypeVar("T")
# Samples in a store call from which its Python work goes to a thread (a replay message holds
# up to 1,000; a live one, a handful).
OFF_LOOP_SAMPLES = 200
EXTEND_WINDOW = 10_000  # seqs read per look past the new samples; a replay batch is far smaller


@dataclass(frozen=True)
class Stored:
    """What one ``store`` call wrote."""

    samples: int  # sample rows offered (duplicates are skipped by the database)
    points: int  # their channel values
    quarantined: int
    watermarks: tuple[Watermark, ...]


def timestamp(ms: int) -> datetime:
    """A protocol timestamp (ms since the epoch) as an exact UTC datetime."""
    return EPOCH + timedelta(0, 0, 0, ms)  # (days, s, µs, ms): keywords cost twice as much


def rows_of(batches: Iterable[Batch], received_at: datetime) -> list[tuple[Any, ...]]:
    """The sample rows of ``batches``, in SAMPLE_COLUMNS order, one per seq (the first)."""
    rows: list[tuple[Any, ...]] = []
    seen: set[tuple[str, str, int]] = set()
    for batch in batches:
        replayed = batch.origin == "replay"
        for sample in batch.samples:
            key = (batch.device_id, batch.stream, sample.seq)
            if key in seen:
                continue
            seen.add(key)
            rows.append(
                (
                    *key,
                    timestamp(sample.ts),
                    readings_json(sample.values),
                    replayed,
                    received_at,
                )
            )
    return rows


def days_of(batches: Iterable[Batch]) -> set[date]:
    """The UTC days the samples of ``batches`` fall in (their partitions on PostgreSQL)."""
    days = {sample.ts // MS_PER_DAY for batch in batches for sample in batch.samples}
    return {EPOCH.date() + timedelta(days=day) for day in days}


async def store(
    database: Database, batches: Sequence[Batch], *, received_at: datetime | None = None
) -> Stored:
    """Store ``batches`` once each, in one transaction, and return their streams' watermarks.

    ``received_at``: when they arrived (now unless given).
    """
    if database.dialect == "postgresql":  # asyncpg's fast path
        days = days_of(batches)
        try:
            async with postgres_writer(database, days) as writer:
                return await store_with(writer, batches, received_at=received_at)
        except Resent:  # some were stored before: all of it again, the careful way
            async with postgres_writer(database, days, straight=False) as writer:
                return await store_with(writer, batches, received_at=received_at)
    async with database.session() as session:
        return await store_with(SqliteWriter(session), batches, received_at=received_at)


async def store_with(
    writer: Writer, batches: Sequence[Batch], *, received_at: datetime | None = None
) -> Stored:
    """``store`` inside a transaction the writer holds."""
    received_at = received_at or datetime.now(UTC)
    covered: dict[StreamKey, list[Range]] = defaultdict(list)
    for batch in batches:
        ranges = covered[(batch.device_id, batch.stream)]
        ranges.extend((sample.seq, sample.seq) for sample in batch.samples)
        ranges.extend((sample.seq, sample.seq) for sample in batch.quarantined)
        ranges.extend((gap.first_seq, gap.last_seq) for gap in batch.gaps)
    many = sum(len(batch.samples) for batch in batches) >= OFF_LOOP_SAMPLES
    rows = await _python_work(many, rows_of, batches, received_at)
    stored: set[SampleKey] = set()
    if rows:
        stored = await writer.insert_samples(rows)
        minutes = await _python_work(many, rollups.roll, batches, stored)
        if minutes:
            await writer.add_rollups(minutes)
    held = quarantine_rows_of(batches, received_at)
    newly_held = await writer.insert_quarantined(held) if held else set()
    gaps = [
        (b.device_id, b.stream, g.first_seq, g.last_seq, g.reason, received_at)
        for b in batches
        for g in b.gaps
    ]
    new_gaps = await writer.insert_gaps(gaps) if gaps else []
    # The lock comes after the inserts and is held to the commit: concurrent writers insert
    # in parallel, and whichever locks later sees the other's committed rows when it looks
    # past its own.
    keys = sorted(covered)  # one lock order for every writer
    acked = await writer.lock_streams(keys, received_at)
    advanced = {key: _advance(acked[key], covered[key]) for key in keys}
    moved = {key: new for key, new in advanced.items() if new > acked[key]}
    if moved:
        advanced |= await _extend(writer, moved)
        marks = [Watermark(key[0], key[1], advanced[key]) for key in moved]
        await writer.set_watermarks(marks, received_at)
    # Last, so its row locks (device, hour: one every writer of the device takes) are held
    # the shortest; after the streams' locks in every writer, so no two wait on each other.
    hours = ingest_hours.tally(batches, rows, stored, newly_held, new_gaps, received_at)
    if hours:
        await writer.add_hours(hours)
    watermarks = tuple(Watermark(key[0], key[1], advanced[key]) for key in keys)
    points = sum(len(sample.values) for batch in batches for sample in batch.samples)
    return Stored(len(rows), points, len(held), watermarks)


async def _python_work(many: bool, work: Callable[..., T], *args: Any) -> T:
    """``work(*args)``, in a worker thread for ``many`` samples (OFF_LOOP_SAMPLES or more).

    Turning a replay transaction's thousand samples into rows, or rolling them up, takes
    10-25 ms of pure Python: on the loop, a live sample arriving meanwhile waits all of it.
    In a thread the interpreter switches every 5 ms (``sys.getswitchinterval``), so the loop
    gets its turn within one switch; a few live samples are not worth the thread hop.
    """
    return await asyncio.to_thread(work, *args) if many else work(*args)


def _advance(acked: int, ranges: Iterable[Range]) -> int:
    """The watermark once ``ranges`` (inclusive seq ranges) are known to be covered."""
    for first, last in sorted(ranges):
        if first > acked + 1:
            break
        acked = max(acked, last)
    return acked


async def _extend(writer: Writer, lows: dict[StreamKey, int]) -> dict[StreamKey, int]:
    """Move each watermark past seqs stored (or reported dropped) earlier, to its first hole."""
    done: dict[StreamKey, int] = {}
    while lows:
        found = await writer.ranges_after(lows, EXTEND_WINDOW)
        next_lows = {}
        for key, low in lows.items():
            new = _advance(low, found.get(key, []))
            if new < low + EXTEND_WINDOW:
                done[key] = new
            else:  # the whole window was covered: look further
                next_lows[key] = new
        lows = next_lows
    return done


def quarantine_rows_of(batches: Iterable[Batch], received_at: datetime) -> list[tuple[Any, ...]]:
    """The quarantine rows of ``batches``, in QUARANTINE_COLUMNS order."""
    return [
        (
            batch.device_id,
            batch.stream,
            sample.seq,
            timestamp(sample.ts),
            sample.reason.value,
            sample.detail[:512],
            sample.raw,
            received_at,
        )
        for batch in batches
        for sample in batch.quarantined
    ]


async def gaps(session: AsyncSession, *, actor: Actor, device_id: str) -> list[TelemetryGap]:
    """Seq ranges the device reported dropping (its outbox cap), newest first."""
    actor.require("devices:read")
    await devices.get_device(session, actor=actor, device_id=device_id)
    query = select(TelemetryGap).where(TelemetryGap.device_id == device_id)
    return list(await session.scalars(query.order_by(TelemetryGap.received_at.desc())))


async def watermark(session: AsyncSession, device_id: str, stream: str) -> int:
    """The stored ack watermark of one stream (0 if it has never been seen)."""
    result = await session.execute(
        select(func.coalesce(func.max(TelemetryStream.acked_seq), 0)).where(
            TelemetryStream.device_id == device_id, TelemetryStream.stream == stream
        )
    )
    return int(result.scalar_one())
