"""/api/v1/devices/{id}: channels, history (``telemetry:read``), CSV (``reports:read``)."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.services.actor import Actor
from core.services.telemetry import export, history
from webui.api.devices import DeviceId
from webui.api.schemas import BucketOut, ChannelOut, in_utc_range
from webui.deps import DatabaseDep, SessionDep, require

router = APIRouter(prefix="/devices", tags=["history"])
TelemetryReader = Annotated[Actor, Depends(require("telemetry:read"))]
Exporter = Annotated[Actor, Depends(require("reports:read"))]


Start = Annotated[
    datetime,
    AfterValidator(in_utc_range),
    Query(description="ISO-8601 with a timezone, inclusive"),
]
End = Annotated[
    datetime,
    AfterValidator(in_utc_range),
    Query(description="ISO-8601 with a timezone, exclusive"),
]
DEFAULT_BUCKETS = 500  # about one per pixel column of a plot half a screen wide
CSV_PIECE = 64 * 1024  # characters per response chunk: one send per line would be slow


@router.get("/{device_id}/channels")
async def list_channels(
    device_id: DeviceId, session: SessionDep, actor: TelemetryReader
) -> list[ChannelOut]:
    """The device's channels with the type and time of each one's latest value."""
    found = await history.channels(session, actor=actor, device_id=device_id)
    return [ChannelOut(**asdict(info)) for info in found]


@router.get("/{device_id}/history")
async def get_history(
    device_id: DeviceId,
    session: SessionDep,
    actor: TelemetryReader,
    channel: str,
    start: Start,
    end: End,
    buckets: Annotated[int, Query(ge=1, le=history.MAX_BUCKETS)] = DEFAULT_BUCKETS,
) -> list[BucketOut]:
    """One channel over [start, end) in equal time buckets; empty buckets are left out.

    A bucket of a minute or more is made of whole minutes (``history.plan``).
    """
    found = await history.downsample(
        session,
        actor=actor,
        device_id=device_id,
        channel=channel,
        start=start,
        end=end,
        buckets=buckets,
    )
    return [BucketOut(**asdict(bucket)) for bucket in found]


async def _pieces(lines: AsyncIterable[str]) -> AsyncIterator[str]:
    """``lines`` joined into pieces of about CSV_PIECE characters."""
    piece: list[str] = []
    size = 0
    async for line in lines:
        piece.append(line)
        size += len(line)
        if size >= CSV_PIECE:
            yield "".join(piece)
            piece, size = [], 0
    if piece:
        yield "".join(piece)


async def csv_response(
    session: AsyncSession,
    database: Database,
    *,
    actor: Actor,
    device_id: str,
    start: datetime,
    end: datetime,
    channels: Sequence[str] | None = None,
) -> StreamingResponse:
    """The audited raw export as a CSV download (API and pages alike).

    The audit entry goes into ``session``; the rows stream once the response is sent, after
    the caller has committed it, from a session of their own.
    """
    await export.start_export(
        session, actor=actor, device_id=device_id, start=start, end=end, channels=channels
    )
    rows = export.raw_rows(database, device_id=device_id, start=start, end=end, channels=channels)
    filename = export.export_filename(device_id, start, end)
    return StreamingResponse(
        _pieces(export.csv_lines(rows)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/{device_id}/telemetry.csv", response_class=StreamingResponse)
async def export_csv(
    device_id: DeviceId,
    session: SessionDep,
    database: DatabaseDep,
    actor: Exporter,
    start: Start,
    end: End,
    channel: Annotated[list[str] | None, Query(description="Repeat for several")] = None,
) -> StreamingResponse:
    """Every stored value in [start, end) as CSV, exact, by time; the export is audited."""
    return await csv_response(
        session,
        database,
        actor=actor,
        device_id=device_id,
        start=start,
        end=end,
        channels=channel,
    )
