"""Deadlines: ending what is past its deadline and its grace, and asking about the unanswered."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import events
from core.db.models import Command
from core.db.types import utcnow
from core.protocol import commands as protocol
from core.services.commands.moves import ACTIVE, record_end

SYSTEM = "system"  # the audit's actor for the deadline
# How long past ``expires_at`` a command that may have reached a station is still waited for:
# the station accepts it up to its signing leeway late by a clock that may itself be up to
# the leeway behind ours, runs it at least MIN_RUN_S, and its answer needs time to arrive.
# Derived from the station's figures, never set apart, so the two sides cannot drift.
EXPIRY_GRACE = timedelta(
    milliseconds=2 * protocol.ACCEPT_LEEWAY_MS,  # its leeway, by a clock a leeway behind
    seconds=protocol.MIN_RUN_S + protocol.ANSWER_TRANSIT_S,
)

# Past ``expires_at``, before a still unanswered command is asked about: a publish begun just
# before the deadline (``attempt`` committed) reaches the broker first, from any replica, so
# the question follows the command on the station's topic and is answered after it.
ASK_AFTER = timedelta(seconds=5)


async def expire_due(session: AsyncSession, *, now: datetime | None = None) -> list[Command]:
    """End every command past its deadline: never delivered ``expired``, else ``timed_out``.

    A command a station may have received waits ``EXPIRY_GRACE`` longer (the package docstring).
    """
    now = now or utcnow()
    waited = now - EXPIRY_GRACE
    unsent = and_(Command.state == "queued", Command.attempts == 0, Command.expires_at <= now)
    unanswered = and_(_published_unanswered(), Command.expires_at <= waited)
    running = and_(
        Command.state == "delivered",
        Command.expires_at <= waited,
        or_(Command.delivered_at.is_(None), Command.delivered_at <= waited),
    )
    ended: list[Command] = []
    for due, state, detail in (
        (unsent, "expired", "not delivered before its deadline"),
        (unanswered, "expired", _UNANSWERED),
        (running, "timed_out", "delivered, but no result before its deadline"),
    ):
        statement = (
            update(Command)
            .where(due)
            .values(state=state, detail=detail, finished_at=now)
            .returning(Command)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        ended += list(await session.scalars(statement))
    for command in sorted(ended, key=lambda c: (c.created_at, str(c.id))):
        events.record(session, events.CommandChanged(command.id, command.device_id, command.state))
        await record_end(session, command, SYSTEM, action=f"command.{command.state}")
    return ended


_UNANSWERED = (
    "not delivered before its deadline, nor in the "
    f"{EXPIRY_GRACE.total_seconds():.0f} s after it that a station could still accept it"
)


def _published_unanswered() -> Any:
    """Published (or being published), and no answer from the station yet."""
    return or_(Command.state == "sent", and_(Command.state == "queued", Command.attempts > 0))


async def ask_due(session: AsyncSession, *, now: datetime | None = None) -> list[Command]:
    """Published commands unanswered ``ASK_AFTER`` past their deadline, not yet asked about:
    each is marked asked (``asked_at``, by one replica only) and returned, for the
    dispatcher to ask its station what became of it."""
    now = now or utcnow()
    statement = (
        update(Command)
        .where(
            _published_unanswered(),
            Command.asked_at.is_(None),
            Command.expires_at <= now - ASK_AFTER,
        )
        .values(asked_at=now)
        .returning(Command)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return sorted(await session.scalars(statement), key=lambda c: (c.created_at, str(c.id)))


async def asked_unanswered(
    session: AsyncSession, *, device_id: str | None = None, now: datetime | None = None
) -> list[Command]:
    """Commands asked about and still unanswered within the grace: to ask again when the
    device or the link comes back (the question may have been lost with the connection)."""
    query = select(Command).where(
        _published_unanswered(),
        Command.asked_at.is_not(None),
        Command.expires_at > (now or utcnow()) - EXPIRY_GRACE,
    )
    if device_id is not None:
        query = query.where(Command.device_id == device_id)
    return list(await session.scalars(query.order_by(Command.created_at)))


async def next_deadline(session: AsyncSession) -> datetime | None:
    """The earliest moment ``expire_due`` has a command to end or ``ask_due`` one to ask
    about (None: none is waiting)."""
    ran_until = case(
        (Command.delivered_at > Command.expires_at, Command.delivered_at),
        else_=Command.expires_at,
    )
    query = select(
        func.min(
            case((and_(Command.state == "queued", Command.attempts == 0), Command.expires_at))
        ),
        func.min(case((_published_unanswered(), Command.expires_at))),
        func.min(case((Command.state == "delivered", ran_until))),
        func.min(
            case((and_(_published_unanswered(), Command.asked_at.is_(None)), Command.expires_at))
        ),
    ).where(Command.state.in_(ACTIVE))
    unsent, unanswered, running, unasked = (await session.execute(query)).one()
    waited = [at + EXPIRY_GRACE for at in (unanswered, running) if at is not None]
    due = [*waited, *([unsent] if unsent is not None else [])]
    return min([*due, *([unasked + ASK_AFTER] if unasked is not None else [])], default=None)
