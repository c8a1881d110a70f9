"""Domain events: a change announces itself once the transaction that made it has committed.

A service records what it changed on its session (``record``); ``Database.session`` hands
the recorded events to the database's bus after the commit, and a rollback drops them with
the session. So a subscriber (the server's backbone: broker accounts, the device directory,
signed configurations) hears of every committed change and of nothing that was undone, and
no caller of a service has to remember to tell it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)
PENDING_KEY = "pp.events"  # the key, in ``session.info``, of the events waiting for the commit


@dataclass(frozen=True)
class DeviceChanged:
    """A device was registered, edited, enabled or disabled, or given a new MQTT password."""

    device_id: str


@dataclass(frozen=True)
class DesiredConfigChanged:
    """A device's desired configuration has a new version."""

    device_id: str


@dataclass(frozen=True)
class CommandChanged:
    """A command was created (``queued``) or moved to ``state``."""

    command_id: uuid.UUID
    device_id: str
    state: str


@dataclass(frozen=True)
class SyncChanged:
    """Synced rows (users, roles, grants, configurations) changed: the change log grew."""


Event = DeviceChanged | DesiredConfigChanged | CommandChanged | SyncChanged
E = TypeVar("E", DeviceChanged, DesiredConfigChanged, CommandChanged, SyncChanged)


def record(session: AsyncSession, event: Event) -> None:
    """Announce ``event`` once ``session``'s transaction commits (never, if it rolls back)."""
    session.info.setdefault(PENDING_KEY, []).append(event)


def take(session: AsyncSession) -> list[Event]:
    """The events recorded on ``session``, each once, in order; the session forgets them."""
    recorded: list[Event] = session.info.pop(PENDING_KEY, [])
    return list(dict.fromkeys(recorded))  # a device edited twice in one transaction: once


class EventBus:
    """Async subscribers by event type, told one after another in the order they came."""

    def __init__(self) -> None:
        self._subscribers: dict[type[Any], list[Callable[[Any], Awaitable[None]]]] = {}

    def subscribe(
        self, kind: type[E], subscriber: Callable[[E], Awaitable[None]]
    ) -> Callable[[], None]:
        """Call ``subscriber`` with every committed ``kind`` event; returns its remover."""
        subscribers = self._subscribers.setdefault(kind, [])
        subscribers.append(subscriber)

        def remove() -> None:
            if subscriber in subscribers:
                subscribers.remove(subscriber)

        return remove

    async def publish(self, events: Iterable[Event]) -> None:
        """Tell each event's subscribers; one that fails is logged and the rest still hear.

        The change has committed whatever a subscriber does, so its failure is not the
        caller's: it must never turn a stored change into an error.
        """
        for event in events:
            for subscriber in list(self._subscribers.get(type(event), [])):
                try:
                    await subscriber(event)
                except Exception:
                    log.exception("subscriber of %s failed", event)
