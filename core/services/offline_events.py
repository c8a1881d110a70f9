"""Offline periods of a device, newest first, as presence recorded them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import OfflineEvent
from core.services.actor import Actor

RECENT_LIMIT = 50  # a device page shows the last few weeks of a flaky link, not years


async def recent(
    session: AsyncSession, *, actor: Actor, device_id: str, limit: int = RECENT_LIMIT
) -> list[OfflineEvent]:
    """The device's latest offline periods (an open one has no end), newest first."""
    actor.require("devices:read")
    query = (
        select(OfflineEvent)
        .where(OfflineEvent.device_id == device_id)
        .order_by(OfflineEvent.started_at.desc(), OfflineEvent.id.desc())
        .limit(limit)
    )
    return list(await session.scalars(query))
