"""A station's answers: each moves its command, corrects an ``expired`` one, or is refused."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from sqlalchemy import and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Command
from core.db.types import utcnow
from core.protocol import commands as protocol
from core.services import audit
from core.services.commands.moves import move, or_now, record_end

# The record of a command its station confirmed, asked at its deadline, it never received.
NEVER_RECEIVED = "the station confirms it never received it before its deadline"

Outcome = Literal["moved", "unchanged", "late", "refused"]


async def record_result(
    session: AsyncSession, *, result: protocol.Result, device_id: str
) -> Outcome:
    """A station's answer (``cmd/result`` of ``device_id``): the command moves, or why not.

    ``moved``; ``unchanged`` (a duplicate of what is recorded); ``late`` (the command had
    already ended otherwise: audited, state kept); ``refused`` (unverified, another device's
    command, or an unknown id: audited, nothing moved).
    """
    actor = f"device:{device_id}"
    if result.cmd_id is None:
        await _refused(session, actor, result, "the station could not verify a command")
        return "refused"
    command_id = uuid.UUID(result.cmd_id)
    now = utcnow()
    may_answer = or_(
        Command.state.in_(("sent", "delivered")),
        and_(Command.state == "queued", Command.attempts > 0),
    )
    # The station's answer shows the broker took the command, whatever mark_sent's progress.
    values: dict[str, Any] = {"state": result.state, "sent_at": or_now(Command.sent_at, now)}
    guards = [Command.device_id == device_id, may_answer]
    if result.state == "delivered":
        guards.append(Command.state.in_(("queued", "sent")))
        values["delivered_at"] = now
    elif _never_received(result):  # asked at its deadline: it never ran, and never will
        values.update(state="expired", detail=NEVER_RECEIVED, finished_at=now)
    else:
        values.update(detail=result.detail, result=result.result, finished_at=now)
        if result.state != "rejected":  # it ran, so it was delivered, answer lost or not
            values["delivered_at"] = or_now(Command.delivered_at, now)
    moved = await move(session, command_id, *guards, **values)
    if moved is not None:
        if moved.state in protocol.TERMINAL:
            await record_end(session, moved, actor, action=f"command.{moved.state}")
        return "moved"
    return await _not_moved(session, command_id, result, device_id)


async def _not_moved(
    session: AsyncSession, command_id: uuid.UUID, result: protocol.Result, device_id: str
) -> Outcome:
    """Why an answer moved nothing: say so in the audit unless it repeats what is recorded."""
    actor = f"device:{device_id}"
    command = await session.get(Command, command_id)
    if command is None:
        await _refused(session, actor, result, "no such command")
        return "refused"
    if command.device_id != device_id:
        why = f"the command is for device '{command.device_id}'"
        await _refused(session, actor, result, why)
        return "refused"
    if command.state == "queued" and command.attempts == 0:
        await _refused(session, actor, result, "the command was never sent")
        return "refused"
    if command.state == "expired" and command.attempts > 0 and result.state != "rejected":
        return await _correct(session, command, result, actor)
    if command.state == "expired" and _never_received(result):
        return "unchanged"  # asked again, or the command arrived late: refused, as recorded
    repeat = result.state == command.state or (
        result.state == "delivered" and command.delivered_at is not None
    )
    if command.state in protocol.TERMINAL and result.repeat:
        # The server never sends an ended command again: someone delivered it once more (a
        # replay), and the station answered from its ledger without running it.
        await audit.record(
            session,
            actor=actor,
            action="command.replayed",
            target_type="command",
            target_id=str(command.id),
            after={"state": result.state, "detail": "delivered again; not run again"},
        )
        return "unchanged"
    if repeat or command.state not in protocol.TERMINAL:
        return "unchanged"  # a duplicate (a re-send answered again), or older news
    await audit.record(
        session,
        actor=actor,
        action="command.late_result",
        target_type="command",
        target_id=str(command.id),
        before={"state": command.state, "detail": command.detail},
        after={"state": result.state, "detail": result.detail, "result": result.result},
    )
    return "late"


async def _correct(
    session: AsyncSession, command: Command, result: protocol.Result, actor: str
) -> Outcome:
    """The station ran a command recorded ``expired``: the record takes the station's word."""
    before = {"state": command.state, "detail": command.detail}
    now = utcnow()
    values: dict[str, Any] = {
        "state": result.state,
        "delivered_at": or_now(Command.delivered_at, now),
    }
    if result.state != "delivered":
        values.update(detail=result.detail, result=result.result, finished_at=now)
    else:  # running again: its end comes from the station, or from the deadline once more
        values.update(detail="", finished_at=None)
    moved = await move(session, command.id, Command.state == "expired", **values)
    if moved is None:  # another replica corrected it first
        return "unchanged"
    await audit.record(
        session,
        actor=actor,
        action="command.corrected",
        target_type="command",
        target_id=str(moved.id),
        before=before,
        after={"state": moved.state, "detail": result.detail, "result": result.result},
    )
    if moved.state in protocol.TERMINAL:
        await record_end(session, moved, actor, action=f"command.{moved.state}")
    return "moved"


def _never_received(result: protocol.Result) -> bool:
    """The station's answer to a query about a command it never received (and now refuses)."""
    return result.state == "rejected" and result.detail == protocol.NOT_RECEIVED


async def _refused(session: AsyncSession, actor: str, result: protocol.Result, reason: str) -> None:
    await audit.record(
        session,
        actor=actor,
        action="command.refused",
        target_type="command",
        target_id=result.cmd_id or result.claimed_id,
        after={
            "reason": reason,
            "state": result.state,
            "detail": result.detail,
            "claimed_id": result.claimed_id,
        },
    )
