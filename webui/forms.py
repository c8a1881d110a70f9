"""What every page action goes through: who acts is checked now, then the service is called.

A page keeps the actor it was built for only to lay itself out. An action (a click that
changes or reveals something) asks the database again who this browser's session belongs
to and what it may do, in the transaction that does the work, so a session ended
elsewhere, a disabled or deleted account, or a lost permission stops it at once. Refusals
say why and change nothing. ``tests/webui/pages/test_acting.py`` holds every handler of
every page to this.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from nicegui import ui
from nicegui.elements.mixins.validation_element import ValidationElement
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.errors import DomainError
from core.services.actor import Actor
from webui import signin

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

# Where a service's error is shown: a field's error text, or a label ("" holds errors
# that name no field; without one they are a notification).
ErrorPlace = ValidationElement | ui.label


async def submit(
    database: Database,
    permission: str | None,
    work: Callable[[AsyncSession, Actor], Awaitable[T]],
    fields: Mapping[str, ErrorPlace] | None = None,
    *,
    done: str | None = None,
) -> T | None:
    """Run ``work`` as whoever is signed in now, if they hold ``permission``, in one transaction.

    ``work`` gets the actor as the database says it is in that transaction, never the one
    the page was built for. A refusal or a domain error is shown and changes nothing.
    """
    fields = fields or {}
    for place in fields.values():
        _show(place, None)
    try:
        async with database.session() as session:
            actor = await signin.actor_in(session)
            if not _permitted(actor, permission):
                return None
            assert actor is not None
            result = await work(session, actor)
    except DomainError as error:
        target = fields.get(error.field or "")
        if target is None:
            target = fields.get("")
        if target is not None:
            _show(target, error.message)
        else:
            ui.notify(error.message, type="negative")
        return None
    if done:
        ui.notify(done, type="positive")
    return result


async def allowed(database: Database, permission: str | None) -> Actor | None:
    """Whoever is signed in now if they hold ``permission``; else say why and None.

    For actions with no transaction of their own (opening an edit form, a download):
    whatever they then write goes through ``submit``, which checks again.
    """
    async with database.session() as session:
        actor = await signin.actor_in(session)
    return actor if _permitted(actor, permission) else None


def _permitted(actor: Actor | None, permission: str | None) -> bool:
    """Whether ``actor`` may act; if not, tell the user why (and send an ended session away)."""
    if actor is None:
        reason = signin.ended_reason() or "you are not signed in"
        ui.notify(f"Nothing was done: {reason}.", type="negative")
        ui.navigate.to("/login")
        return False
    if permission is not None and not actor.can(permission):
        ui.notify(
            f"Nothing was done: your roles no longer allow this ('{permission}' is required).",
            type="negative",
        )
        return False
    return True


def _show(place: ErrorPlace, message: str | None) -> None:
    if isinstance(place, ValidationElement):
        place.error = message
    else:
        place.text = message or ""


def value(element: Any) -> Any:
    """An input's value, with text stripped."""
    raw = element.value
    return raw.strip() if isinstance(raw, str) else raw


def view_only(handler: F) -> F:
    """Mark a handler that changes nothing and reveals nothing the page does not already hold
    (sorting, paging or searching rows already loaded; copying a secret already on screen):
    it needs no fresh look at who is acting. ``test_acting`` takes this mark at its word, so
    a handler that writes, or reads the database, must never carry it.
    """
    return handler
