"""The conflict log: values that lost to a later one for the same field, for admins to read.

A conflict is kept when two replicas set one field and the loser's value differs from the
winner's: a station's edit that arrived after a later one, or an earlier value a station's
later edit overwrote. Nothing is lost silently: the losing value, its stamp, where it was
made and by whom stay here.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import SyncConflict
from core.protocol.sync import FieldChange
from core.services.actor import Actor

READ_PERMISSION = "users:manage"  # conflicts show users' and roles' values: their managers'


def record(
    session: AsyncSession,
    *,
    kept: FieldChange,
    lost: FieldChange,
    lost_origin: str,
    lost_actor: str = "",
    device_id: str | None = None,
) -> SyncConflict:
    """Keep ``lost`` (which ``kept`` beat) in the log; added to the session, not flushed."""
    conflict = SyncConflict(
        entity=kept.entity,
        key=kept.key,
        field=kept.field,
        kept_value=kept.value,
        kept_stamp=kept.stamp,
        lost_value=lost.value,
        lost_stamp=lost.stamp,
        lost_origin=lost_origin,
        lost_actor=lost_actor,
        device_id=device_id,
    )
    session.add(conflict)
    return conflict


async def recent(
    session: AsyncSession, *, actor: Actor, limit: int = 200, device_id: str | None = None
) -> list[SyncConflict]:
    """The newest conflicts first (of one station's edits when ``device_id`` is given)."""
    actor.require(READ_PERMISSION)
    query = select(SyncConflict).order_by(SyncConflict.id.desc()).limit(limit)
    if device_id is not None:
        query = query.where(SyncConflict.device_id == device_id)
    return list(await session.scalars(query))


async def count(session: AsyncSession, *, device_id: str | None = None) -> int:
    """How many conflicts the log holds (for one station's edits when ``device_id`` is given)."""
    query = select(func.count()).select_from(SyncConflict)
    if device_id is not None:
        query = query.where(SyncConflict.device_id == device_id)
    return int(await session.scalar(query) or 0)


async def stations(session: AsyncSession, *, actor: Actor) -> list[str]:
    """The stations whose edits the log holds conflicts of, by device id."""
    actor.require(READ_PERMISSION)
    query = (
        select(SyncConflict.device_id)
        .where(SyncConflict.device_id.is_not(None))
        .distinct()
        .order_by(SyncConflict.device_id)
    )
    return [device_id for device_id in await session.scalars(query) if device_id is not None]
