"""Headline numbers for the overview page, limited to what the actor may see."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Device, Role, User
from core.services.actor import Actor


async def counts(session: AsyncSession, *, actor: Actor) -> dict[str, int]:
    """Counts of devices, users and roles, each only with the permission to see it."""
    result: dict[str, int] = {}
    if actor.can("devices:read"):
        result["devices"] = await session.scalar(select(func.count()).select_from(Device)) or 0
        enabled = select(func.count()).select_from(Device).where(Device.enabled)
        result["enabled devices"] = await session.scalar(enabled) or 0
    if actor.can("users:manage"):
        live = select(func.count()).select_from(User).where(~User.deleted)
        result["users"] = await session.scalar(live) or 0
    if actor.can("roles:manage"):
        live = select(func.count()).select_from(Role).where(~Role.deleted)
        result["roles"] = await session.scalar(live) or 0
    return result
