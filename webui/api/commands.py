"""/api/v1 commands: send one to a device, follow it, cancel it (``commands:send`` to send and
cancel, ``devices:read`` to read)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import AfterValidator, AwareDatetime

from core.db.engine import Database
from core.db.models import Command
from core.protocol.commands import TERMINAL
from core.protocol.topics import DEVICE_ID_PATTERN
from core.services import commands
from core.services.actor import Actor
from core.settings import Settings
from webui.api.command_schemas import CommandCreate, CommandOut
from webui.api.devices import DeviceId
from webui.api.schemas import in_utc_range
from webui.backbone.command_waiters import REREAD_S
from webui.deps import (
    BackboneDep,
    BearerDep,
    DatabaseDep,
    SessionDep,
    SettingsDep,
    permitted,
    principal_of,
    require,
)

router = APIRouter(tags=["commands"])
Reader = Annotated[Actor, Depends(require("devices:read"))]
Sender = Annotated[Actor, Depends(require("commands:send"))]
Limit = Annotated[int, Query(ge=1, le=commands.MAX_PAGE)]
# Past a billion rows nobody pages; the database's integer would overflow long before a 500.
Offset = Annotated[int, Query(ge=0, le=10**9)]
MAX_WAIT_S = 30  # a long poll's longest wait: below common proxy and client read timeouts
WaitSeconds = Annotated[
    float,
    Query(
        ge=0,
        le=MAX_WAIT_S,
        description="Seconds to wait for the command to end before answering (0: at once)",
    ),
]


Moment = Annotated[AwareDatetime, AfterValidator(in_utc_range)]


def _out(command: Command) -> CommandOut:
    return CommandOut(
        id=command.id,
        device_id=command.device_id,
        kind=command.kind,
        args=command.args,
        state=command.state,
        detail=command.detail,
        result=command.result,
        created_by=command.created_by_name,
        created_at=command.created_at,
        expires_at=command.expires_at,
        sent_at=command.sent_at,
        delivered_at=command.delivered_at,
        finished_at=command.finished_at,
        attempts=command.attempts,
        config_version=command.config_version,
        batch_id=command.batch_id,
    )


@router.post("/devices/{device_id}/commands", status_code=status.HTTP_201_CREATED)
async def create_command(
    device_id: DeviceId, body: CommandCreate, session: SessionDep, actor: Sender
) -> CommandOut:
    """Queue a command; it goes out when the station is online, unless its deadline passes.

    UpdateConfig also needs ``config:write``: its settings become the device's next desired
    configuration version. 404: no such device; 409: the device is disabled.
    """
    command = await commands.create(
        session,
        actor=actor,
        device_id=device_id,
        kind=body.kind,
        args=body.args,
        timeout_s=body.timeout_s,
    )
    return _out(command)


@router.get("/devices/{device_id}/commands")
async def list_device_commands(
    device_id: DeviceId, session: SessionDep, actor: Reader, limit: Limit = 50, offset: Offset = 0
) -> list[CommandOut]:
    """The device's commands, newest first."""
    found = await commands.list_for_device(
        session, actor=actor, device_id=device_id, limit=limit, offset=offset
    )
    return [_out(command) for command in found]


@router.get("/commands")
async def search_commands(
    session: SessionDep,
    actor: Reader,
    device_id: Annotated[str | None, Query(pattern=DEVICE_ID_PATTERN)] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    state: Annotated[str | None, Query(max_length=16)] = None,
    since: Annotated[Moment | None, Query(description="Created at or after (ISO-8601)")] = None,
    until: Annotated[Moment | None, Query(description="Created before (ISO-8601)")] = None,
    batch_id: uuid.UUID | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[CommandOut]:
    """Commands of every device, newest first, narrowed by each filter given."""
    found = await commands.search(
        session,
        actor=actor,
        device_id=device_id,
        kind=kind,
        state=state,
        since=since,
        until=until,
        batch_id=batch_id,
        limit=limit,
        offset=offset,
    )
    return [_out(command) for command in found]


@router.get("/commands/{command_id}", response_model=CommandOut)
async def get_command(
    command_id: uuid.UUID,
    request: Request,
    database: DatabaseDep,
    settings: SettingsDep,
    backbone: BackboneDep,
    credentials: BearerDep,
    wait_s: WaitSeconds = 0,
) -> CommandOut | JSONResponse:
    """One command and where it stands.

    ``wait_s`` > 0: a long poll. The answer comes as soon as the command has ended
    (succeeded, failed, rejected, expired, timed_out, canceled), or once ``wait_s`` has
    passed, with the state it is then in (200 either way; ask again if it has not ended).
    429 (Retry-After) when too many callers wait already.
    """
    if wait_s == 0:
        return await _read(database, settings, credentials, command_id, request)
    deadline = time.monotonic() + wait_s
    with backbone.command_waiters.watch(command_id) as woken:  # before the first read
        command = await _read(database, settings, credentials, command_id, request)
        if command.state in TERMINAL:
            return command
        if woken is None:
            return _too_many_waiting()
        # No session is held while waiting; each read checks the caller again.
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(left, REREAD_S)):
                    await woken.wait()
            if await request.is_disconnected():
                break  # nobody to answer: leave the waiters now
            command = await _read(database, settings, credentials, command_id, request)
            if command.state in TERMINAL:
                break
        return command


def _too_many_waiting() -> JSONResponse:
    """429: a caller asks again shortly (answering at once would only make it ask at once)."""
    body = {"detail": "too many callers are waiting already; ask again shortly", "field": "wait_s"}
    headers = {"Retry-After": str(math.ceil(REREAD_S))}
    return JSONResponse(body, status.HTTP_429_TOO_MANY_REQUESTS, headers=headers)


async def _read(
    database: Database,
    settings: Settings,
    credentials: HTTPAuthorizationCredentials | None,
    command_id: uuid.UUID,
    request: Request,
) -> CommandOut:
    """The command as it stands, read for a caller checked in the same session (401, 403)."""
    async with database.session() as session:
        principal = await principal_of(session, settings, credentials)
        actor = permitted(principal, "devices:read", database=database, request=request)
        return _out(await commands.get(session, actor=actor, command_id=command_id))


@router.post("/commands/{command_id}/cancel")
async def cancel_command(command_id: uuid.UUID, session: SessionDep, actor: Sender) -> CommandOut:
    """Withdraw a command not yet handed to the broker; 409 saying why once it has been."""
    return _out(await commands.cancel(session, actor=actor, command_id=command_id))
