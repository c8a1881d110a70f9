"""Moves: the one guarded step that changes a command's state, and the record of its end.

Every move, whoever makes it (a person, the dispatcher, the station's answer, the deadline),
is ``move``; every end is recorded by ``record_end`` (audited, and an ``UpdateConfig``'s
version withdrawn or reinstated to match).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, literal, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import events
from core.db.models import Command
from core.db.types import UtcDateTime
from core.services import audit, command_withdrawal

ACTIVE = ("queued", "sent", "delivered")  # not yet ended: the dispatcher (re)sends these


def or_now(column: Any, now: datetime) -> Any:
    """``column`` if it is set, else ``now`` (typed like the column, so SQLite stores it alike)."""
    return func.coalesce(column, literal(now, type_=UtcDateTime()))


async def move(
    session: AsyncSession, command_id: uuid.UUID, *guards: Any, **values: Any
) -> Command | None:
    """One guarded move; the command as it now stands, or None if a guard held it back."""
    statement = (
        update(Command)
        .where(Command.id == command_id, *guards)
        .values(**values)
        .returning(Command)
        .execution_options(synchronize_session=False, populate_existing=True)
    )
    command = await session.scalar(statement)
    if command is not None:
        events.record(session, events.CommandChanged(command.id, command.device_id, command.state))
    return command


async def record_end(session: AsyncSession, command: Command, actor: str, *, action: str) -> None:
    """Audit a command's end; withdraw an ``UpdateConfig`` that never reached the station."""
    if command.state in ("expired", "canceled"):
        withdrawn = await command_withdrawal.withdraw(session, command)
        if withdrawn:  # flushed with the audit entry below
            command.detail = f"{command.detail}; {withdrawn}" if command.detail else withdrawn
    elif command.state == "succeeded":  # applied after all: a withdrawal must not stand
        reinstated = await command_withdrawal.reinstate(session, command)
        if reinstated:
            command.detail = f"{command.detail}; {reinstated}" if command.detail else reinstated
    await audit.record(
        session,
        actor=actor,
        action=action,
        target_type="command",
        target_id=str(command.id),
        after={
            "device_id": command.device_id,
            "kind": command.kind,
            "state": command.state,
            "detail": command.detail,
            "result": command.result,
            "attempts": command.attempts,
        },
    )
