"""Channel alarms: the one module that reads and writes the ``alarms`` table.

An alarm is a channel beyond one of its thresholds (``low`` or ``high``): raised by the
stored sample that crossed it, cleared by the first one back inside, or by the server when
the threshold is taken out of the configuration. At most one alarm per device, channel and
bound is active (not cleared); raising an active one or clearing an inactive one changes
nothing, so a replica or a retry that repeats a transition writes it once. Every raise and
clear is audited: by ``device:<id>`` when its sample decided, by ``server`` otherwise. The
server's backbone (``webui/backbone/alarms.py``) decides the transitions; pages read here.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Alarm
from core.services import audit
from core.services.actor import Actor

Bound = Literal["low", "high"]
BOUNDS: tuple[Bound, ...] = ("low", "high")
RECENT_LIMIT = 20  # cleared alarms a device page lists: the latest episodes, not a report
SERVER = "server"  # the actor of a clear no sample decided (a threshold removed)


def _active(device_id: str, channel: str, bound: Bound) -> Select[Alarm]:
    return select(Alarm).where(
        Alarm.device_id == device_id,
        Alarm.channel == channel,
        Alarm.bound == bound,
        Alarm.cleared_at.is_(None),
    )


def _described(alarm: Alarm) -> dict[str, str]:
    return {
        "channel": alarm.channel,
        "bound": alarm.bound,
        "threshold": str(alarm.threshold),
        "value": str(alarm.value),
        "raised_at": alarm.raised_at.isoformat(),
    }


async def raise_alarm(
    session: AsyncSession,
    *,
    device_id: str,
    channel: str,
    bound: Bound,
    threshold: Decimal,
    value: Decimal,
    at: datetime,
) -> Alarm:
    """The active alarm of the device's channel and bound: raised now by the sample at ``at``
    with ``value``, or the one already active (unchanged, not audited again)."""
    if bound not in BOUNDS:
        msg = f"bound must be 'low' or 'high': {bound!r}"
        raise ValueError(msg)
    known = await session.scalar(_active(device_id, channel, bound))
    if known is not None:
        return known
    alarm = Alarm(
        device_id=device_id,
        channel=channel,
        bound=bound,
        threshold=threshold,
        value=value,
        raised_at=at,
    )
    session.add(alarm)
    await session.flush()
    await audit.record(
        session,
        actor=f"device:{device_id}",
        action="alarm.raise",
        target_type="device",
        target_id=device_id,
        after=_described(alarm),
    )
    return alarm


async def clear_alarm(
    session: AsyncSession,
    *,
    device_id: str,
    channel: str,
    bound: Bound,
    at: datetime,
    value: Decimal | None = None,
    reason: str = "back inside",
) -> Alarm | None:
    """Clear the device's active alarm on the channel and bound, if there is one.

    ``value``: the sample back inside that cleared it, at ``at`` (its time), audited as the
    device's; without one the server cleared it (``reason`` says why, ``at`` is now).
    """
    alarm = await session.scalar(_active(device_id, channel, bound))
    if alarm is None:
        return None
    alarm.cleared_at, alarm.clear_value = at, value
    await session.flush()
    await audit.record(
        session,
        actor=SERVER if value is None else f"device:{device_id}",
        action="alarm.clear",
        target_type="device",
        target_id=device_id,
        before=_described(alarm),
        after={
            "cleared_at": at.isoformat(),
            "clear_value": None if value is None else str(value),
            "reason": reason,
        },
    )
    return alarm


async def all_active(session: AsyncSession) -> list[Alarm]:
    """Every active alarm, oldest first (the backbone's state at start)."""
    query = select(Alarm).where(Alarm.cleared_at.is_(None)).order_by(Alarm.raised_at, Alarm.id)
    return list(await session.scalars(query))


async def active(
    session: AsyncSession, *, actor: Actor, device_id: str | None = None
) -> list[Alarm]:
    """Active alarms, of one device or of all, oldest first."""
    actor.require("devices:read")
    query = select(Alarm).where(Alarm.cleared_at.is_(None))
    if device_id is not None:
        query = query.where(Alarm.device_id == device_id)
    return list(await session.scalars(query.order_by(Alarm.raised_at, Alarm.id)))


async def recent(
    session: AsyncSession, *, actor: Actor, device_id: str, limit: int = RECENT_LIMIT
) -> list[Alarm]:
    """The device's latest cleared alarms, most recently cleared first."""
    actor.require("devices:read")
    query = (
        select(Alarm)
        .where(Alarm.device_id == device_id, Alarm.cleared_at.is_not(None))
        .order_by(Alarm.cleared_at.desc(), Alarm.id.desc())
        .limit(limit)
    )
    return list(await session.scalars(query))


async def counts(session: AsyncSession, *, actor: Actor) -> dict[str, int]:
    """How many alarms are active, by device (devices without any are left out)."""
    actor.require("devices:read")
    query = (
        select(Alarm.device_id, func.count())
        .where(Alarm.cleared_at.is_(None))
        .group_by(Alarm.device_id)
    )
    return {device_id: int(n) for device_id, n in (await session.execute(query)).all()}
