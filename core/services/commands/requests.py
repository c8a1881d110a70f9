"""A person's commands: creating, reading and searching them, and cancelling one unpublished."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import events
from core.db.models import Command
from core.db.types import utcnow
from core.errors import ConflictError, InvalidError, NotFoundError
from core.protocol import commands as protocol
from core.protocol import topics
from core.services import audit, device_configs, devices
from core.services.actor import Actor
from core.services.commands.moves import move, record_end

MAX_PAGE = 200  # commands per page: a day of a busy station at a glance, still one quick query
# Arguments as stored and signed: the signed message (base64 inside an envelope) must stay
# under the station's limit, protocol.MAX_BYTES.
MAX_ARGS_BYTES = protocol.MAX_BYTES // 2


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


async def kinds_and_devices(
    session: AsyncSession, command_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, str]]:
    """(kind, device id) of each of these commands the table holds, in one query."""
    wanted = set(command_ids)
    if not wanted:
        return {}
    query = select(Command.id, Command.kind, Command.device_id).where(Command.id.in_(wanted))
    return {row.id: (row.kind, row.device_id) for row in await session.execute(query)}


# -- a person's move -------------------------------------------------------------------


async def cancel(session: AsyncSession, *, actor: Actor, command_id: uuid.UUID) -> Command:
    """Withdraw a command no publish has begun for; ``ConflictError`` saying why otherwise."""
    actor.require("commands:send")
    now = utcnow()
    detail = f"canceled by {actor.name}"
    moved = await move(
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
    await record_end(session, moved, actor.name, action="command.cancel")
    return moved


def _why_not_cancelable(command: Command) -> str:
    if command.state in protocol.TERMINAL:
        return f"the command has already ended: {command.state}"
    if command.state == "queued":  # a publish has begun: the broker may hold it now
        return "the command is being handed to the broker: once sent it cannot be withdrawn"
    return f"the command is {command.state}: the broker has it, and cannot withdraw it"
