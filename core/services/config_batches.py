"""One configuration change sent to many devices: a batch of UpdateConfig commands.

The devices are chosen by id, or by a selector (enabled or not, a glob on the id such as
``press-*``). Each device gets a command of its own, all sharing a batch id, and through it
its own configuration version (source ``bulk``); the command's states then follow each
device to applied (``succeeded``) or refused (``failed``, ``rejected``), or to a deadline
it missed. Sending is all or nothing: when any device cannot take the change (disabled,
unknown, or the change merged with its configuration is one a station cannot run), nothing
is created and the error names that device. Devices are taken in id order, so two batches
lock device configurations in the same order and never deadlock each other.
"""

from __future__ import annotations

import fnmatch
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Command
from core.errors import DomainError, InvalidError, NotFoundError
from core.protocol import commands as protocol
from core.services import audit, commands, devices
from core.services.actor import Actor

MAX_DEVICES = 1000  # one batch: a plant's stations; larger fleets go in parts, by pattern
# A station restarting or briefly off the network still gets the change within the hour;
# one away longer sees its version withdrawn (expired) and is told again by a later batch.
DEFAULT_TIMEOUT_S = 3600
MAX_PATTERN = 64  # as long as a device id
# What each command state means for the device's change, in words.
OUTCOMES = {
    "queued": "waiting to be sent",
    "sent": "sent, not yet acknowledged",
    "delivered": "received, applying",
    "succeeded": "applied",
    "failed": "refused",
    "rejected": "refused",
    "expired": "never reached the station",
    "timed_out": "no answer in time",
    "canceled": "canceled",
}


@dataclass(frozen=True)
class Selector:
    """Which devices: by id (``devices``), or by ``enabled`` and an id ``pattern`` (a glob)."""

    devices: tuple[str, ...] | None = None
    enabled: bool | None = None
    pattern: str | None = None

    def __post_init__(self) -> None:
        if self.devices is not None and (self.enabled is not None or self.pattern is not None):
            msg = "choose devices by id or by a selector, not both"
            raise InvalidError(msg, field="selector")
        if self.pattern is not None and not 1 <= len(self.pattern) <= MAX_PATTERN:
            msg = f"pattern must be 1-{MAX_PATTERN} characters"
            raise InvalidError(msg, field="selector.pattern")

    def describe(self) -> str:
        """The selection in words, for refusals: ``enabled devices matching 'press-*'``."""
        if self.devices is not None:
            return f"{len(self.devices)} device(s) named"
        which = {True: "enabled devices", False: "disabled devices", None: "devices"}
        matching = f" matching '{self.pattern}'" if self.pattern else ""
        return f"{which[self.enabled]}{matching}"


@dataclass(frozen=True)
class Sent:
    """One device's part of a batch: its command and the configuration version it carries."""

    device_id: str
    command_id: uuid.UUID
    config_version: int | None


@dataclass(frozen=True)
class Progress:
    """Where one device's change stands."""

    device_id: str
    command_id: uuid.UUID
    config_version: int | None
    state: str
    detail: str
    created_at: datetime
    ended: bool

    @property
    def outcome(self) -> str:
        """The state in words: ``applied``, ``refused: bad unit``."""
        words = OUTCOMES.get(self.state, self.state)
        return f"{words}: {self.detail}" if self.detail and self.ended else words


async def select(session: AsyncSession, *, actor: Actor, selector: Selector) -> list[str]:
    """The ids of the devices ``selector`` chooses, in id order (``devices:read``).

    ``NotFoundError`` for a named device that does not exist; ``InvalidError`` when nothing
    matches or more than MAX_DEVICES do.
    """
    known = {d.id: d.enabled for d in await devices.list_devices(session, actor=actor)}
    if selector.devices is not None:
        if not selector.devices:
            msg = "choose at least one device"
            raise InvalidError(msg, field="devices")
        chosen = sorted(set(selector.devices))
        for device_id in chosen:
            if device_id not in known:
                msg = f"no device with id '{device_id}'"
                raise NotFoundError(msg, field="devices")
    else:
        chosen = [
            device_id
            for device_id, enabled in sorted(known.items())
            if selector.enabled in (None, enabled)
            and (selector.pattern is None or fnmatch.fnmatchcase(device_id, selector.pattern))
        ]
    field = "devices" if selector.devices is not None else "selector"
    if not chosen:
        msg = f"nothing matched: there are no {selector.describe()}"
        raise InvalidError(msg, field=field)
    if len(chosen) > MAX_DEVICES:
        msg = f"{len(chosen)} devices chosen; at most {MAX_DEVICES} in one change: narrow it"
        raise InvalidError(msg, field=field)
    return chosen


async def send(
    session: AsyncSession,
    *,
    actor: Actor,
    changes: Mapping[str, Any],
    selector: Selector,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> tuple[uuid.UUID, list[Sent]]:
    """Queue an UpdateConfig of ``changes`` for each chosen device, as one batch.

    Needs ``commands:send`` and ``config:write``. All or nothing: the first device that
    cannot take it raises its error, naming the device, and the caller's transaction
    rolls everything back.
    """
    actor.require("config:write")
    actor.require("commands:send")
    chosen = await select(session, actor=actor, selector=selector)
    batch_id = uuid.uuid4()
    sent: list[Sent] = []
    for device_id in chosen:
        try:
            command = await commands.create(
                session,
                actor=actor,
                device_id=device_id,
                kind=protocol.UPDATE_CONFIG,
                args=changes,
                timeout_s=timeout_s,
                batch_id=batch_id,
            )
        except DomainError as error:
            raise _for_device(error, device_id) from error
        sent.append(Sent(device_id, command.id, command.config_version))
    await audit.record(
        session,
        actor=actor.name,
        action="config.bulk",
        target_type="batch",
        target_id=str(batch_id),
        after={
            "changes": dict(changes),
            "selection": selector.describe(),
            "devices": chosen,
            "timeout_s": timeout_s,
        },
    )
    return batch_id, sent


def _for_device(error: DomainError, device_id: str) -> DomainError:
    """``error`` saying which device it is about, its field named as the request names it."""
    field = error.field
    if field is not None and field.startswith("args"):
        field = "changes" + field.removeprefix("args")
    message = error.message if device_id in error.message else f"{device_id}: {error.message}"
    return type(error)(message, field=field)


async def progress(session: AsyncSession, *, actor: Actor, batch_id: uuid.UUID) -> list[Progress]:
    """Each device's command in the batch and where it stands, by device id (``devices:read``)."""
    found: list[Command] = []
    while True:
        page = await commands.search(
            session, actor=actor, batch_id=batch_id, limit=commands.MAX_PAGE, offset=len(found)
        )
        found += page
        if len(page) < commands.MAX_PAGE:
            break
    if not found:
        msg = f"no change to many devices with batch id '{batch_id}'"
        raise NotFoundError(msg)
    return sorted(
        (
            Progress(
                device_id=c.device_id,
                command_id=c.id,
                config_version=c.config_version,
                state=c.state,
                detail=c.detail,
                created_at=c.created_at,
                ended=c.state in protocol.TERMINAL,
            )
            for c in found
        ),
        key=lambda p: p.device_id,
    )


def tally(rows: Sequence[Progress]) -> dict[str, int]:
    """How many devices stand in each state."""
    return dict(Counter(row.state for row in rows))
