"""Raw telemetry export: every stored value of a range, exact, streamed as CSV.

Samples come from one query in chunks, so memory does not grow with the range; each sample
gives one row per channel value, written as stored (a decimal keeps its scale: 21.50 stays
21.50).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.db.models import TelemetrySample
from core.protocol.telemetry import Value, ValueType, value_type
from core.services import audit
from core.services.actor import Actor
from core.services.telemetry import history

EXPORT_CHUNK = 5000  # samples fetched per round trip: few trips, memory bounded to one chunk
CSV_HEADER = ("ts", "stream", "seq", "channel", "value", "type", "replayed")


@dataclass(frozen=True)
class RawRow:
    """One stored channel value, exactly as stored (a Decimal keeps its scale)."""

    ts: datetime
    stream: str
    seq: int
    channel: str
    value: Value
    replayed: bool

    @property
    def type(self) -> ValueType:
        """``integer``, ``decimal`` or ``boolean``."""
        return value_type(self.value)


async def start_export(
    session: AsyncSession,
    *,
    actor: Actor,
    device_id: str,
    start: datetime,
    end: datetime,
    channels: Sequence[str] | None = None,
) -> None:
    """Check that an export may run (as ``raw_rows`` would) and audit who exports what."""
    actor.require("reports:read")
    history.check_range(start, end)
    for channel in channels or ():
        history.check_channel(channel)
    await history.require_device(session, device_id)
    await audit.record(
        session,
        actor=actor.name,
        action="telemetry.export",
        target_type="device",
        target_id=device_id,
        after={
            "start": start.astimezone(UTC).isoformat(),
            "end": end.astimezone(UTC).isoformat(),
            "channels": sorted(channels) if channels else None,
        },
    )


async def raw_rows(
    database: Database,
    *,
    device_id: str,
    start: datetime,
    end: datetime,
    channels: Sequence[str] | None = None,
) -> AsyncIterator[RawRow]:
    """Every value of the device in [start, end), by (ts, seq, stream, channel), in chunks.

    ``channels`` limits it to those channels (None or empty: all). It opens its own
    session, so it can outlive the request that checked ``start_export``.
    """
    history.check_range(start, end)
    wanted = frozenset(channels or ())
    sample = TelemetrySample
    query = (
        select(sample.ts, sample.stream, sample.seq, sample.readings, sample.replayed)
        .where(sample.device_id == device_id, sample.ts >= start, sample.ts < end)
        # The stream breaks the tie between streams that share a ts and seq.
        .order_by(sample.ts, sample.seq, sample.stream)
    )
    async with database.sessions() as session:
        result = await session.stream(query.execution_options(yield_per=EXPORT_CHUNK))
        async for chunk in result.partitions():
            for ts, stream, seq, readings, replayed in chunk:
                for channel in sorted(readings):
                    if not wanted or channel in wanted:
                        yield RawRow(ts, stream, seq, channel, readings[channel], bool(replayed))


def _csv_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    # Fixed-point, so 1E+3 reads the same from either database and no reader needs exponents.
    return str(value) if isinstance(value, int) else format(value, "f")


def csv_time(ts: datetime) -> str:
    """ISO-8601 in UTC with milliseconds, such as 2025-11-26T15:13:20.123Z."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def csv_lines(rows: AsyncIterable[RawRow]) -> AsyncIterator[str]:
    """The CSV text of ``rows``: the header line, then one line per row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(fields: Sequence[object]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(fields)
        return buffer.getvalue()

    yield line(CSV_HEADER)
    async for row in rows:
        replayed = "true" if row.replayed else "false"
        value = _csv_value(row.value)
        yield line((csv_time(row.ts), row.stream, row.seq, row.channel, value, row.type, replayed))


def export_filename(device_id: str, start: datetime, end: datetime) -> str:
    """``<device>_<start>_<end>.csv`` with compact UTC times (device ids are filename-safe)."""
    stamp = "%Y%m%dT%H%M%SZ"
    return f"{device_id}_{start.astimezone(UTC):{stamp}}_{end.astimezone(UTC):{stamp}}.csv"
