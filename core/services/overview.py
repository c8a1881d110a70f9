"""Headline numbers for the overview page, limited to what the actor may see."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from core.services import devices, roles, users
from core.services.actor import Actor


async def counts(session: AsyncSession, *, actor: Actor) -> dict[str, int]:
    """Counts of devices, users and roles, each only with the permission to see it."""
    result: dict[str, int] = {}
    if actor.can("devices:read"):
        result["devices"], result["enabled devices"] = await devices.counts(session)
    if actor.can("users:manage"):
        result["users"] = await users.count_live(session)
    if actor.can("roles:manage"):
        result["roles"] = await roles.count_live(session)
    return result
