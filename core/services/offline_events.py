"""Offline periods of each device: the one module that reads and writes ``offline_events``.

Presence records them as it follows status messages and heartbeats; the device page reads
a device's, and the overview the fleet's, newest first.

Each change of presence is audited in the same transaction, by the device itself
(``device:<id>``): ``device.offline`` when a period starts (its reason: clean, lost or
stale) or a stale one is found lost, ``device.online`` when one ends, or when a device the
server has never seen comes online. A heartbeat, a repeated birth or a will for a period
already open changes nothing, so writes nothing: a flapping station leaves one entry per
real transition, and a server restart none for devices whose presence it did not change.

Several server replicas hear the same status messages and heartbeats, and each calls
``begin`` or ``end`` for the same transition at nearly the same time. On PostgreSQL each
call first takes a transaction-scoped advisory lock of its device (``_lock``), held until it
commits: the replica that comes second waits, then reads what the first wrote, and finds
nothing left to do. So each transition is written, and audited, once across replicas.
SQLite has one writer and one server, whose presence runs one transition at a time.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from sqlalchemy import Subquery, func, literal, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import OfflineEvent
from core.db.types import UtcDateTime
from core.services import audit, devices
from core.services.actor import Actor
from core.services.audit_names import DEVICE_ACTOR

RECENT_LIMIT = 50  # a device page shows the last few weeks of a flaky link, not years
LATEST_LIMIT = 8  # the overview shows the fleet's last few, beside its other cards
WENT_ONLINE = "device.online"
WENT_OFFLINE = "device.offline"
# Mixed into each device's advisory lock key, so it differs from the lock of anything else
# keyed by a device id (any constant works; these bytes spell "offline").
LOCK_SALT = b"offline"
EVER = datetime(2000, 1, 1, tzinfo=UTC)  # older than any audit entry: "was it ever written"


def lock_key(device_id: str) -> int:
    """The device's advisory lock key: a stable signed 64-bit hash of its id."""
    digest = hashlib.blake2b(device_id.encode(), digest_size=8, key=LOCK_SALT).digest()
    return int.from_bytes(digest, "big", signed=True)


async def _lock(session: AsyncSession, device_id: str) -> None:
    """Hold the device's transition lock until this transaction ends (PostgreSQL only)."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key(device_id)}
        )


async def _audit(
    session: AsyncSession,
    device_id: str,
    action: str,
    *,
    before: dict[str, str] | None = None,
    after: dict[str, str] | None = None,
) -> None:
    await audit.record(
        session,
        actor=DEVICE_ACTOR + device_id,
        action=action,
        target_type="device",
        target_id=device_id,
        before=before,
        after=after,
    )


async def begin(
    session: AsyncSession, *, device_id: str, reason: str, at: datetime, first_news: bool
) -> None:
    """An offline period starts ``at``, unless one is open; a stale one found lost is lost.

    ``first_news``: the first the server hears of the device since it started (a retained
    will, say), so the period began when the device was last seen, if it ever was.
    """
    await _lock(session, device_id)
    open_event = await session.scalar(
        select(OfflineEvent).where(
            OfflineEvent.device_id == device_id, OfflineEvent.ended_at.is_(None)
        )
    )
    if open_event is None:
        last_seen = await devices.last_seen_at(session, device_id) if first_news else None
        session.add(OfflineEvent(device_id=device_id, started_at=last_seen or at, reason=reason))
        await _audit(session, device_id, WENT_OFFLINE, after={"reason": reason})
    elif open_event.reason == "stale" and reason == "lost":
        open_event.reason = "lost"
        await _audit(
            session, device_id, WENT_OFFLINE, before={"reason": "stale"}, after={"reason": "lost"}
        )


async def end(session: AsyncSession, *, device_id: str, at: datetime, first_news: bool) -> None:
    """The device is back: its open offline period, if any, ends ``at``.

    ``first_news``: the first the server hears of the device since it started; with no
    period open it was online before, unless it was never seen at all (a new station):
    that is audited once, even when several replicas (or restarts) hear its first news.
    """
    await _lock(session, device_id)
    ended = await session.execute(
        update(OfflineEvent)
        .where(OfflineEvent.device_id == device_id, OfflineEvent.ended_at.is_(None))
        .values(ended_at=at)
        .returning(OfflineEvent.reason)
    )
    reasons = list(ended.scalars())
    if reasons:
        await _audit(session, device_id, WENT_ONLINE, before={"reason": reasons[0]})
    elif first_news and await devices.last_seen_at(session, device_id) is None:
        await audit.lock(session)  # the look below stays true until this entry is written
        if not await audit.has_since(
            session,
            action=WENT_ONLINE,
            actor=DEVICE_ACTOR + device_id,
            target_id=device_id,
            since=EVER,
        ):
            await _audit(session, device_id, WENT_ONLINE)


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


async def latest(
    session: AsyncSession, *, actor: Actor, limit: int = LATEST_LIMIT
) -> list[OfflineEvent]:
    """The fleet's latest offline periods, of any device, newest started first."""
    actor.require("devices:read")
    query = (
        select(OfflineEvent)
        .order_by(OfflineEvent.started_at.desc(), OfflineEvent.id.desc())
        .limit(limit)
    )
    return list(await session.scalars(query))


async def overlapping(
    session: AsyncSession,
    *,
    actor: Actor,
    device_id: str | None,
    start: datetime,
    end: datetime,
    limit: int | None = None,
) -> list[OfflineEvent]:
    """Offline periods of one device (None: every device) overlapping [start, end), by start
    (the first ``limit`` of them, if given).

    An open period overlaps from its start on: it lasts until it ends.
    """
    actor.require("devices:read")
    query = select(OfflineEvent).where(
        OfflineEvent.started_at < end,
        or_(OfflineEvent.ended_at.is_(None), OfflineEvent.ended_at > start),
    )
    if device_id is not None:
        query = query.where(OfflineEvent.device_id == device_id)
    query = query.order_by(OfflineEvent.started_at, OfflineEvent.id)
    return list(await session.scalars(query if limit is None else query.limit(limit)))


def spans(*, device_id: str | None, start: datetime, end: datetime, now: datetime) -> Subquery:
    """The periods overlapping [start, end), as rows for a report to join other tables to.

    Columns: ``key`` (the period's id), ``device_id``, ``started_at``, ``until`` (its end,
    or ``now`` while open) and ``next_start`` (when the device's next period started, or
    ``now``). Read-only, and no row leaves the database: the reader counts what lies in them.
    """
    at_now = literal(now, UtcDateTime())
    # Periods over before ``start`` cannot overlap; the next of one that does never is.
    live = or_(OfflineEvent.ended_at.is_(None), OfflineEvent.ended_at > start)
    following = func.lead(OfflineEvent.started_at).over(
        partition_by=OfflineEvent.device_id, order_by=(OfflineEvent.started_at, OfflineEvent.id)
    )
    periods = select(
        OfflineEvent.id.label("key"),
        OfflineEvent.device_id,
        OfflineEvent.started_at,
        func.coalesce(OfflineEvent.ended_at, at_now).label("until"),
        func.coalesce(following, at_now).label("next_start"),
    ).where(live)
    if device_id is not None:
        periods = periods.where(OfflineEvent.device_id == device_id)
    inner = periods.subquery("periods")
    return select(inner).where(inner.c.started_at < end).subquery("spans")
