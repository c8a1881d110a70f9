"""Run a service call from a form: errors land next to the field they concern."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from nicegui import ui
from nicegui.elements.mixins.validation_element import ValidationElement
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.errors import DomainError

T = TypeVar("T")


async def submit(
    database: Database,
    work: Callable[[AsyncSession], Awaitable[T]],
    fields: Mapping[str, ValidationElement] | None = None,
    *,
    done: str | None = None,
) -> T | None:
    """Run ``work`` in one transaction; on a domain error show it and change nothing."""
    fields = fields or {}
    for element in fields.values():
        element.error = None
    try:
        async with database.session() as session:
            result = await work(session)
    except DomainError as error:
        target = fields.get(error.field or "")
        if target is not None:
            target.error = error.message
        else:
            ui.notify(error.message, type="negative")
        return None
    if done:
        ui.notify(done, type="positive")
    return result


def value(element: Any) -> Any:
    """An input's value, with text stripped."""
    raw = element.value
    return raw.strip() if isinstance(raw, str) else raw
