"""The dispatcher's moves before a station answers: what to send, each publish, its hand-over."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Command
from core.db.types import utcnow
from core.services.commands.moves import ACTIVE, move


async def pending(
    session: AsyncSession, *, device_id: str | None = None, now: datetime | None = None
) -> list[Command]:
    """Commands not yet ended and within their deadline, oldest first: to (re)send."""
    query = select(Command).where(Command.state.in_(ACTIVE), Command.expires_at > (now or utcnow()))
    if device_id is not None:
        query = query.where(Command.device_id == device_id)
    return list(await session.scalars(query.order_by(Command.created_at)))


async def attempt(
    session: AsyncSession, *, command_id: uuid.UUID, now: datetime | None = None
) -> Command | None:
    """Count a publish about to begin; the command to sign, or None if it must not go.

    None when the command has ended or its deadline has passed: nothing is published after
    its deadline, nor after a cancellation. Committed before the publish, so a cancellation
    racing with it sees that the broker may now hold the command.
    """
    statement = (
        update(Command)
        .where(
            Command.id == command_id,
            Command.state.in_(ACTIVE),
            Command.expires_at > (now or utcnow()),
        )
        .values(attempts=Command.attempts + 1)
        .returning(Command)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    return await session.scalar(statement)


async def mark_sent(
    session: AsyncSession, *, command_id: uuid.UUID, at: datetime | None = None
) -> bool:
    """The broker completed the QoS 2 hand-over: ``queued`` → ``sent``; whether it moved."""
    moved = await move(
        session, command_id, Command.state == "queued", state="sent", sent_at=at or utcnow()
    )
    return moved is not None
