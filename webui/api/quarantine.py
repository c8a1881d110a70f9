"""/api/v1/telemetry/quarantine: samples held back at ingest, with their reason and raw values
(``telemetry:quarantine``, an Admin's by default)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from core.protocol.telemetry import INT64_MAX, STREAM_PATTERN, QuarantineReason
from core.protocol.topics import DEVICE_ID_PATTERN
from core.services.actor import Actor
from core.services.telemetry import quarantine
from core.services.telemetry.quarantine import Filters
from webui.api.commands import Moment
from webui.api.devices import DeviceId
from webui.api.quarantine_schemas import QuarantinedOut, QuarantinePageOut
from webui.deps import SessionDep, require

router = APIRouter(prefix="/telemetry/quarantine", tags=["telemetry"])
Reader = Annotated[Actor, Depends(require(quarantine.PERMISSION))]


@router.get("")
async def list_quarantined(
    session: SessionDep,
    actor: Reader,
    device_id: Annotated[str | None, Query(pattern=DEVICE_ID_PATTERN)] = None,
    reason: QuarantineReason | None = None,
    since: Annotated[Moment | None, Query(description="Received at or after (ISO-8601)")] = None,
    until: Annotated[Moment | None, Query(description="Received before (ISO-8601)")] = None,
    limit: Annotated[int, Query(ge=1, le=quarantine.MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=quarantine.MAX_OFFSET)] = 0,
) -> QuarantinePageOut:
    """Quarantined samples, newest received first, narrowed by each filter given.

    Each raw payload is clipped to its first characters here (``raw_clipped``); GET the
    sample alone for all of it. ``total`` counts every match, for paging with ``offset``.
    """
    filters = Filters(
        device_id=device_id,
        reason=None if reason is None else reason.value,
        since=since,
        until=until,
    )
    found = await quarantine.page(session, actor=actor, filters=filters, limit=limit, offset=offset)
    return QuarantinePageOut(
        total=found.total,
        offset=offset,
        limit=limit,
        items=[QuarantinedOut.of(held) for held in found.rows],
    )


@router.get("/{device_id}/{stream}/{seq}")
async def get_quarantined(
    device_id: DeviceId,
    stream: Annotated[str, Path(pattern=STREAM_PATTERN)],
    seq: Annotated[int, Path(ge=1, le=INT64_MAX)],
    session: SessionDep,
    actor: Reader,
) -> QuarantinedOut:
    """One quarantined sample with its raw payload whole; 404 if there is none."""
    held = await quarantine.sample(
        session, actor=actor, device_id=device_id, stream=stream, seq=seq
    )
    return QuarantinedOut.of(held)
