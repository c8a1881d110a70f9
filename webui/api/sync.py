"""/api/v1/sync: each station's sync state (``devices:read``) and the conflict log
(``users:manage``: it holds users' and roles' values, never a password hash)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from core.protocol.topics import DEVICE_ID_PATTERN
from core.services import devices, sync_conflict_views, sync_conflicts, sync_log, sync_peers
from core.services.actor import Actor
from webui.api.sync_schemas import ConflictOut, StationSyncOut, SyncStationsOut
from webui.deps import SessionDep, require

router = APIRouter(prefix="/sync", tags=["sync"])
Reader = Annotated[Actor, Depends(require("devices:read"))]
ConflictReader = Annotated[Actor, Depends(require(sync_conflicts.READ_PERMISSION))]
MAX_CONFLICTS = 1000  # a page of the log; older ones wait for a narrower question


@router.get("/stations")
async def stations(session: SessionDep, actor: Reader) -> SyncStationsOut:
    """Every registered station's sync state, by device id, and the log's head.

    A station that never synced reads cursor 0, lag = head and ``last_sync_at`` null.
    """
    head = await sync_log.head_cursor(session)
    known = {s.device_id: s for s in await sync_peers.states(session, actor=actor)}
    listed = [
        StationSyncOut(**asdict(known[d.id]))
        if d.id in known
        else StationSyncOut(
            device_id=d.id,
            cursor=0,
            lag=head,
            last_sync_at=None,
            pending_up=0,
            accepted=0,
            refused=0,
            conflicts=0,
        )
        for d in await devices.list_devices(session, actor=actor)
    ]
    return SyncStationsOut(head=head, stations=listed)


@router.get("/conflicts")
async def conflicts(
    session: SessionDep,
    actor: ConflictReader,
    device_id: Annotated[
        str | None, Query(pattern=DEVICE_ID_PATTERN, description="Only this station's edits")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_CONFLICTS)] = 200,
) -> list[ConflictOut]:
    """The newest conflicts first: the value kept and the value lost, each with its stamp,
    time, place and author; a password hash is never shown ('password changed')."""
    found = await sync_conflict_views.views(session, actor=actor, limit=limit, device_id=device_id)
    return [ConflictOut.model_validate(asdict(view)) for view in found]
