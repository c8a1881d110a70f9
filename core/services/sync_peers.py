"""Each station's sync state as the server sees it: cursor, last sync, edits held back.

The station tells its cursor and how many of its edits wait for an answer in every pull
and every batch of edits; the server counts the answers it gave. Lag is the log's head
minus the station's cursor: how many field changes the station has not applied yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import DeviceSync
from core.db.types import utcnow
from core.services import sync_log
from core.services.actor import Actor


async def _row(session: AsyncSession, device_id: str) -> DeviceSync:
    row = await session.get(DeviceSync, device_id, with_for_update=True)
    if row is None:
        row = DeviceSync(
            device_id=device_id, cursor=0, pending_up=0, accepted=0, refused=0, conflicts=0
        )
        session.add(row)
    return row


async def note_contact(
    session: AsyncSession,
    *,
    device_id: str,
    cursor: int | None = None,
    pending: int | None = None,
    now: datetime | None = None,
) -> None:
    """The station pulled or sent edits: its cursor and pending count as it said them."""
    row = await _row(session, device_id)
    if cursor is not None:
        row.cursor = cursor
    if pending is not None:
        row.pending_up = pending
    row.last_sync_at = now or utcnow()
    await session.flush()


async def note_answers(
    session: AsyncSession,
    *,
    device_id: str,
    accepted: int = 0,
    refused: int = 0,
    conflicts: int = 0,
) -> None:
    """The server answered some of the station's edits."""
    row = await _row(session, device_id)
    row.accepted += accepted
    row.refused += refused
    row.conflicts += conflicts
    await session.flush()


@dataclass(frozen=True)
class PeerState:
    """One station's sync state for the fleet and device pages."""

    device_id: str
    cursor: int
    lag: int  # field changes the station has not applied
    last_sync_at: datetime | None
    pending_up: int
    accepted: int
    refused: int
    conflicts: int


async def states(
    session: AsyncSession, *, actor: Actor, device_id: str | None = None
) -> list[PeerState]:
    """Every station's sync state (or one's), by device id; never-synced ones absent."""
    actor.require("devices:read")
    head = await sync_log.head_cursor(session)
    query = select(DeviceSync).order_by(DeviceSync.device_id)
    if device_id is not None:
        query = query.where(DeviceSync.device_id == device_id)
    return [
        PeerState(
            r.device_id,
            r.cursor,
            max(head - r.cursor, 0),
            r.last_sync_at,
            r.pending_up,
            r.accepted,
            r.refused,
            r.conflicts,
        )
        for r in await session.scalars(query)
    ]
