"""/api/v1/devices/{id}/config: a device's configuration as a history of versions; and
/api/v1/configs/bulk: one change for many devices.

Reading needs ``devices:read``; changing it ``config:write`` (and ``commands:send`` for
many devices at once, since each gets an UpdateConfig command). A change names the version
it was made against (``If-Match``, the ``ETag`` a read answered), so two people editing at
once cannot overwrite each other unseen: the later one gets 409 and nothing changes. A
change without ``If-Match`` is 428; ``If-Match: *`` deliberately changes whatever is current.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import DeviceConfig
from core.errors import InvalidError, PreconditionRequiredError
from core.services import config_batches, config_history, device_configs
from core.services.actor import Actor
from webui.api.devices import DeviceId
from webui.api.schemas import (
    BulkCommandOut,
    BulkConfigIn,
    BulkConfigOut,
    BulkDeviceOut,
    BulkProgressOut,
    ConfigChangeOut,
    ConfigDriftOut,
    ConfigRollbackIn,
    ConfigVersionOut,
    DeviceConfigOut,
    DeviceConfigUpdate,
)
from webui.deps import SessionDep, require

router = APIRouter(tags=["configuration"])
Reader = Annotated[Actor, Depends(require("devices:read"))]
ConfigWriter = Annotated[Actor, Depends(require("config:write"))]
Sender = Annotated[Actor, Depends(require("commands:send"))]
IfMatch = Annotated[
    str | None,
    Header(
        description='The version the change was made against, as the ETag said ("3"); '
        "* to change whatever is current",
        max_length=64,
    ),
]
Version = Annotated[int, Path(ge=1, le=2**31 - 1)]
MAX_LIMIT = 200  # versions a page: a person reads a few dozen, a script pages on with before
# A strong ETag as GET gives it ("3"), or the bare number: what a hand-written call sends.
_ETAG = re.compile(r'"([0-9]{1,10})"|([0-9]{1,10})')


def expected_version(if_match: str | None) -> int | None:
    """The version named by ``If-Match`` (None for ``*``); 428 when it is missing."""
    if if_match is None:
        msg = (
            "say which version you changed: send If-Match with the ETag from "
            'GET /api/v1/devices/{id}/config (such as "3"), or If-Match: * to change '
            "whatever is current"
        )
        raise PreconditionRequiredError(msg, field="If-Match")
    text = if_match.strip()
    if text == "*":
        return None
    found = _ETAG.fullmatch(text)
    if found is None:
        msg = f'If-Match must be a configuration version as the ETag gives it ("3"): {text!r}'
        raise InvalidError(msg, field="If-Match")
    return int(found.group(1) or found.group(2))


async def _out(
    session: AsyncSession, actor: Actor, config: DeviceConfig, response: Response
) -> DeviceConfigOut:
    response.headers["ETag"] = f'"{config.desired_version}"'
    drift = await device_configs.drift(session, actor=actor, config=config)
    out = DeviceConfigOut.model_validate(config, from_attributes=True)
    if drift is not None:
        out.drift = ConfigDriftOut(
            desired_version=drift.desired_version,
            reported_version=drift.reported_version,
            since=drift.since,
        )
    return out


def _version_out(entry: config_history.Entry) -> ConfigVersionOut:
    changes = None
    if entry.changes is not None:
        changes = [
            ConfigChangeOut(path=c.path, kind=c.kind, old=c.old, new=c.new, text=c.text)
            for c in entry.changes
        ]
    return ConfigVersionOut(
        version=entry.version,
        settings=entry.settings,
        changed_by=entry.changed_by,
        changed_at=entry.changed_at,
        source=entry.source,  # type: ignore[arg-type]  # one of Source, as stored
        note=entry.note,
        command_id=entry.command_id,
        changes=changes,
    )


@router.get("/devices/{device_id}/config")
async def get_config(
    device_id: DeviceId, session: SessionDep, actor: Reader, response: Response
) -> DeviceConfigOut:
    """What the device should run (its version is the ETag), what it runs, and the drift."""
    config = await device_configs.get(session, actor=actor, device_id=device_id)
    return await _out(session, actor, config, response)


@router.patch("/devices/{device_id}/config")
async def update_config(
    device_id: DeviceId,
    body: DeviceConfigUpdate,
    session: SessionDep,
    actor: ConfigWriter,
    response: Response,
    if_match: IfMatch = None,
) -> DeviceConfigOut:
    """Change the desired configuration (a new version); the station gets it signed.

    ``If-Match`` is required: 409 when another change came first, and nothing changes.
    """
    config = await device_configs.update_desired(
        session,
        actor=actor,
        device_id=device_id,
        changes=body.model_dump(exclude_unset=True),
        expected_version=expected_version(if_match),
    )
    return await _out(session, actor, config, response)


@router.get("/devices/{device_id}/config/history")
async def list_versions(
    device_id: DeviceId,
    session: SessionDep,
    actor: Reader,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> list[ConfigVersionOut]:
    """Versions newest first, each with who made it, when, how, and what it changed.

    Page on with ``before`` = the last version of a page.
    """
    entries = await device_configs.history(
        session, actor=actor, device_id=device_id, limit=limit, before=before
    )
    return [_version_out(e) for e in entries]


@router.get("/devices/{device_id}/config/history/{version}")
async def get_version(
    device_id: DeviceId, version: Version, session: SessionDep, actor: Reader
) -> ConfigVersionOut:
    """One version, with what it changed."""
    entry = await device_configs.version(session, actor=actor, device_id=device_id, version=version)
    return _version_out(entry)


@router.post("/devices/{device_id}/config/rollback")
async def rollback_config(
    device_id: DeviceId,
    body: ConfigRollbackIn,
    session: SessionDep,
    actor: ConfigWriter,
    response: Response,
    if_match: IfMatch = None,
) -> DeviceConfigOut:
    """Ask for an old version's settings again: a new version equal to it.

    ``If-Match`` as for a change; 404 for a version not in the history, 422 when the
    current version already asks for those settings.
    """
    config = await device_configs.rollback(
        session,
        actor=actor,
        device_id=device_id,
        to_version=body.version,
        expected_version=expected_version(if_match),
    )
    return await _out(session, actor, config, response)


@router.post("/configs/bulk", status_code=status.HTTP_202_ACCEPTED)
async def send_bulk(
    body: BulkConfigIn, session: SessionDep, actor: ConfigWriter, _: Sender
) -> BulkConfigOut:
    """One change for many devices: an UpdateConfig command each, sharing a batch id.

    Each device gets its own configuration version. All or nothing: if any chosen device
    cannot take the change, nothing is created and the error names it; 422 when nothing
    matches the selector.
    """
    if body.devices is not None:
        selector = config_batches.Selector(devices=tuple(body.devices))
    else:
        assert body.selector is not None
        selector = config_batches.Selector(
            enabled=body.selector.enabled, pattern=body.selector.pattern
        )
    batch_id, sent = await config_batches.send(
        session,
        actor=actor,
        changes=body.changes.model_dump(exclude_unset=True),
        selector=selector,
        timeout_s=body.timeout_s,
    )
    return BulkConfigOut(
        batch_id=batch_id,
        commands=[
            BulkCommandOut(
                device_id=s.device_id, command_id=s.command_id, config_version=s.config_version
            )
            for s in sent
        ],
    )


@router.get("/configs/bulk/{batch_id}")
async def get_bulk(batch_id: uuid.UUID, session: SessionDep, actor: Reader) -> BulkProgressOut:
    """Where each device's change stands: applied, refused, or still on its way."""
    rows = await config_batches.progress(session, actor=actor, batch_id=batch_id)
    return BulkProgressOut(
        batch_id=batch_id,
        counts=config_batches.tally(rows),
        done=all(row.ended for row in rows),
        devices=[
            BulkDeviceOut(
                device_id=row.device_id,
                command_id=row.command_id,
                config_version=row.config_version,
                state=row.state,
                outcome=row.outcome,
                detail=row.detail,
                ended=row.ended,
            )
            for row in rows
        ],
    )
