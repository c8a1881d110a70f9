"""Commands: what was asked of which station, and where each one stands.

The one module that reads and writes the ``commands`` table. A person creates a command
(``commands:send``; an ``UpdateConfig`` also needs ``config:write``, since it makes the
device's next desired configuration version); the dispatcher moves it. Every move is one
guarded ``UPDATE … WHERE id = … AND state IN (…)``, so two server replicas, a duplicate
answer or a late one can never move a command backwards, skip a state or leave a terminal
one:

- ``queued`` → ``sent`` once the broker has completed the QoS 2 hand-over (``mark_sent``);
- → ``delivered`` / ``succeeded`` / ``failed`` / ``rejected`` only on the station's own
  answer (``record_result``), accepted from ``sent`` or ``delivered``, and from ``queued``
  once a publish has begun (``attempts > 0``: the answer can beat ``mark_sent``'s commit);
- ``queued`` / ``sent`` → ``expired`` and ``delivered`` → ``timed_out`` at the deadline
  (``expire_due``), as the deadlines below say;
- ``queued`` → ``canceled`` by a person, only before any publish began: once a command has
  been handed to the broker it may reach the station, and cannot be withdrawn.

Creation, cancellation, every terminal state and every answer refused (an unverified one,
one for another device's command or an unknown id) or arriving too late are audited. Each
move is announced (``CommandChanged``) after its commit, so pages and the dispatcher follow.

An ``UpdateConfig`` that ends ``expired`` or ``canceled`` has its configuration version
withdrawn (core.services.command_withdrawal), so the station never applies a change whose
command says it did not happen.

Deadlines tell the truth. A station accepts a signed command up to
``protocol.ACCEPT_LEEWAY_MS`` past its ``expires_at`` by its own clock, a leeway for clocks
that disagree by up to that much; so in the server's time a station may accept it until
twice the leeway past ``expires_at``. The server ends a command only when no station whose
clock keeps within the leeway can still be running it unheard:

- never handed to the broker (``queued``, no publish begun): ``expired`` at ``expires_at``,
  since nothing is published after it (``attempt``);
- published but unanswered: ``expired`` at ``expires_at`` + ``EXPIRY_GRACE`` (twice the
  station's leeway, its shortest run and the answer's transit, computed from the station's
  own figures so the two sides cannot drift apart);
- ``delivered``: ``timed_out`` at ``EXPIRY_GRACE`` past the later of ``expires_at`` and the
  station's ``delivered``.

The grace is a fallback for a station that cannot be asked. At ``expires_at`` +
``ASK_AFTER`` a published command still unanswered is asked about, once (``ask_due``
records ``asked_at``; the dispatcher signs and publishes the ``command.query``, and asks
again whenever the device or the link comes back while it stays unanswered, within the
grace: ``asked_unanswered``). The station answers from its ledger without running
anything: what it ran is recorded as any answer is; one it never received it refuses from
then on and answers ``rejected`` ``protocol.NOT_RECEIVED``, which ends the command
``expired`` ("the station confirms it never received it before its deadline": it was not
run, and an ``UpdateConfig``'s version is withdrawn). So a lost command ends seconds after
its deadline, and no command runs past it because of the question.

An answer can still come later than that (a station clock further behind than the leeway,
or an answer held back by a broken link). ``expired`` says the station never ran it, so the
station's own verified word that it did (``delivered``, ``succeeded``, ``failed``) corrects
that record to what it said, audited as ``command.corrected``; it is the only terminal state
that moves, and only so. An ``UpdateConfig`` that ends ``succeeded`` after its version was
withdrawn has the version reinstated, so the configuration asked for is the one applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

import orjson
from sqlalchemy import Select, and_, case, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import events
from core.db.models import Command
from core.db.types import UtcDateTime, utcnow
from core.errors import ConflictError, InvalidError, NotFoundError
from core.protocol import commands as protocol
from core.protocol import topics
from core.services import audit, command_withdrawal, device_configs, devices
from core.services.actor import Actor

ACTIVE = ("queued", "sent", "delivered")  # not yet ended: the dispatcher (re)sends these
MAX_PAGE = 200  # commands per page: a day of a busy station at a glance, still one quick query
# Arguments as stored and signed: the signed message (base64 inside an envelope) must stay
# under the station's limit, protocol.MAX_BYTES.
MAX_ARGS_BYTES = protocol.MAX_BYTES // 2
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
# The record of a command its station confirmed, asked at its deadline, it never received.
NEVER_RECEIVED = "the station confirms it never received it before its deadline"

Outcome = Literal["moved", "unchanged", "late", "refused"]


# -- creating and reading --------------------------------------------------------------


async def create(
    session: AsyncSession,
    *,
    actor: Actor,
    device_id: str,
    kind: str,
    args: Mapping[str, Any],
    timeout_s: float = protocol.DEFAULT_TIMEOUT_S,
    batch_id: uuid.UUID | None = None,
) -> Command:
    """Queue a command for ``device_id``, to be delivered within ``timeout_s`` seconds.

    ``NotFoundError`` for no such device, ``ConflictError`` for a disabled one,
    ``InvalidError`` naming the field (``kind``, ``args.<name>``, ``timeout_s``) for a bad
    command; nothing is stored then. An ``UpdateConfig`` makes the device's next desired
    configuration version (``config_version``; ``source`` ``bulk`` within a batch).
    """
    actor.require("commands:send")
    enabled = await devices.enabled(session, device_id) if topics.is_device_id(device_id) else None
    if enabled is None:
        msg = f"no device with id '{device_id}'"
        raise NotFoundError(msg)
    if not enabled:
        msg = f"device '{device_id}' is disabled: it takes no commands until it is enabled"
        raise ConflictError(msg)
    checked = _checked(kind, args, timeout_s)
    now = utcnow()
    command = Command(
        id=uuid.uuid4(),
        device_id=device_id,
        kind=kind,
        args=checked,
        state="queued",
        detail="",
        result={},
        created_by=actor.user_id,
        created_by_name=actor.name[:128],
        batch_id=batch_id,
        attempts=0,
        created_at=now,
        expires_at=now + timedelta(seconds=timeout_s),
    )
    session.add(command)
    await session.flush()
    if kind == protocol.UPDATE_CONFIG:
        command.config_version = await _new_config_version(session, actor, command)
    await audit.record(
        session,
        actor=actor.name,
        action="command.create",
        target_type="command",
        target_id=str(command.id),
        after={
            "device_id": device_id,
            "kind": kind,
            "args": checked,
            "timeout_s": timeout_s,
            "expires_at": command.expires_at.isoformat(),
            "config_version": command.config_version,
            "batch_id": str(batch_id) if batch_id else None,
        },
    )
    events.record(session, events.CommandChanged(command.id, device_id, "queued"))
    return command


def _checked(kind: str, args: Mapping[str, Any], timeout_s: float) -> dict[str, Any]:
    try:
        checked = protocol.check_args(kind, args)
    except protocol.ArgsError as error:
        raise InvalidError(str(error), field=error.field) from error
    for name, value in checked.items():  # what the station's JSON reader would refuse
        try:
            orjson.dumps(value)
        except TypeError as error:  # an integer past 64 bits
            msg = f"{name}: {error}"
            raise InvalidError(msg, field=f"args.{name}") from error
    if len(orjson.dumps(checked)) > MAX_ARGS_BYTES:
        msg = f"arguments over {MAX_ARGS_BYTES} bytes: a station would not read the command"
        raise InvalidError(msg, field="args")
    if not protocol.MIN_TIMEOUT_S <= timeout_s <= protocol.MAX_TIMEOUT_S:
        msg = (
            f"timeout_s must be {protocol.MIN_TIMEOUT_S}-{protocol.MAX_TIMEOUT_S} seconds: "
            f"{timeout_s:g}"
        )
        raise InvalidError(msg, field="timeout_s")
    return checked


async def _new_config_version(session: AsyncSession, actor: Actor, command: Command) -> int:
    """The desired configuration version an ``UpdateConfig`` asks the station to apply."""
    try:
        config = await device_configs.update_desired(
            session,
            actor=actor,
            device_id=command.device_id,
            changes=command.args,
            source="bulk" if command.batch_id else "command",
            note=f"command {command.id}",
            command_id=command.id,
        )
    except InvalidError as error:  # the changes are fine alone, not with what is there
        raise InvalidError(error.message, field=error.field or "args") from error
    if config.desired_version == 0:  # no version to name: the changes changed nothing
        msg = "the device has no configuration yet, and these changes make none"
        raise InvalidError(msg, field="args")
    return config.desired_version


async def get(session: AsyncSession, *, actor: Actor, command_id: uuid.UUID) -> Command:
    """One command, or ``NotFoundError``."""
    actor.require("devices:read")
    command = await session.get(Command, command_id)
    if command is None:
        msg = f"no command with id '{command_id}'"
        raise NotFoundError(msg)
    return command


async def list_for_device(
    session: AsyncSession, *, actor: Actor, device_id: str, limit: int = 50, offset: int = 0
) -> list[Command]:
    """The device's commands, newest first; ``NotFoundError`` for no such device."""
    await devices.get_device(session, actor=actor, device_id=device_id)  # devices:read, 404
    query = select(Command).where(Command.device_id == device_id)
    return await _page(session, query, limit, offset)


async def search(
    session: AsyncSession,
    *,
    actor: Actor,
    device_id: str | None = None,
    kind: str | None = None,
    state: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    batch_id: uuid.UUID | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Command]:
    """Commands of every device, newest first, narrowed by each filter given.

    ``since`` (inclusive) and ``until`` (exclusive) bound when they were created.
    """
    actor.require("devices:read")
    query = select(Command)
    if device_id is not None:
        query = query.where(Command.device_id == device_id)
    if kind is not None:
        if kind not in protocol.KINDS:
            msg = f"unknown command kind {kind!r}; one of {', '.join(protocol.KINDS)}"
            raise InvalidError(msg, field="kind")
        query = query.where(Command.kind == kind)
    if state is not None:
        if state not in protocol.STATES:
            msg = f"unknown command state {state!r}; one of {', '.join(protocol.STATES)}"
            raise InvalidError(msg, field="state")
        query = query.where(Command.state == state)
    if since is not None:
        query = query.where(Command.created_at >= since)
    if until is not None:
        query = query.where(Command.created_at < until)
    if batch_id is not None:
        query = query.where(Command.batch_id == batch_id)
    return await _page(session, query, limit, offset)


async def _page(
    session: AsyncSession, query: Select[Command], limit: int, offset: int
) -> list[Command]:
    if not 1 <= limit <= MAX_PAGE:
        msg = f"limit must be 1-{MAX_PAGE}: {limit}"
        raise InvalidError(msg, field="limit")
    if offset < 0:
        msg = f"offset must not be negative: {offset}"
        raise InvalidError(msg, field="offset")
    ordered = query.order_by(Command.created_at.desc(), Command.id.desc())
    return list(await session.scalars(ordered.limit(limit).offset(offset)))


# -- a person's move -------------------------------------------------------------------


async def cancel(session: AsyncSession, *, actor: Actor, command_id: uuid.UUID) -> Command:
    """Withdraw a command no publish has begun for; ``ConflictError`` saying why otherwise."""
    actor.require("commands:send")
    now = utcnow()
    detail = f"canceled by {actor.name}"
    moved = await _move(
        session,
        command_id,
        Command.state == "queued",
        Command.attempts == 0,
        state="canceled",
        detail=detail,
        finished_at=now,
    )
    if moved is None:
        command = await get(session, actor=actor, command_id=command_id)
        raise ConflictError(_why_not_cancelable(command))
    await _ended(session, moved, actor.name, action="command.cancel")
    return moved


def _why_not_cancelable(command: Command) -> str:
    if command.state in protocol.TERMINAL:
        return f"the command has already ended: {command.state}"
    if command.state == "queued":  # a publish has begun: the broker may hold it now
        return "the command is being handed to the broker: once sent it cannot be withdrawn"
    return f"the command is {command.state}: the broker has it, and cannot withdraw it"


# -- the dispatcher's moves ------------------------------------------------------------


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
    moved = await _move(
        session, command_id, Command.state == "queued", state="sent", sent_at=at or utcnow()
    )
    return moved is not None


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
    values: dict[str, Any] = {"state": result.state, "sent_at": _or_now(Command.sent_at, now)}
    guards = [Command.device_id == device_id, may_answer]
    if result.state == "delivered":
        guards.append(Command.state.in_(("queued", "sent")))
        values["delivered_at"] = now
    elif _never_received(result):  # asked at its deadline: it never ran, and never will
        values.update(state="expired", detail=NEVER_RECEIVED, finished_at=now)
    else:
        values.update(detail=result.detail, result=result.result, finished_at=now)
        if result.state != "rejected":  # it ran, so it was delivered, answer lost or not
            values["delivered_at"] = _or_now(Command.delivered_at, now)
    moved = await _move(session, command_id, *guards, **values)
    if moved is not None:
        if moved.state in protocol.TERMINAL:
            await _ended(session, moved, actor, action=f"command.{moved.state}")
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
        "delivered_at": _or_now(Command.delivered_at, now),
    }
    if result.state != "delivered":
        values.update(detail=result.detail, result=result.result, finished_at=now)
    else:  # running again: its end comes from the station, or from the deadline once more
        values.update(detail="", finished_at=None)
    moved = await _move(session, command.id, Command.state == "expired", **values)
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
        await _ended(session, moved, actor, action=f"command.{moved.state}")
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


async def expire_due(session: AsyncSession, *, now: datetime | None = None) -> list[Command]:
    """End every command past its deadline: never delivered ``expired``, else ``timed_out``.

    A command a station may have received waits ``EXPIRY_GRACE`` longer (module docstring).
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
        await _ended(session, command, SYSTEM, action=f"command.{command.state}")
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


# -- shared steps ----------------------------------------------------------------------


def _or_now(column: Any, now: datetime) -> Any:
    """``column`` if it is set, else ``now`` (typed like the column, so SQLite stores it alike)."""
    return func.coalesce(column, literal(now, type_=UtcDateTime()))


async def _move(
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


async def _ended(session: AsyncSession, command: Command, actor: str, *, action: str) -> None:
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


async def kinds_and_devices(
    session: AsyncSession, command_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, str]]:
    """(kind, device id) of each of these commands the table holds, in one query."""
    wanted = set(command_ids)
    if not wanted:
        return {}
    query = select(Command.id, Command.kind, Command.device_id).where(Command.id.in_(wanted))
    return {row.id: (row.kind, row.device_id) for row in await session.execute(query)}
