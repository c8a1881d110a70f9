"""What a person sees when a page could not be built: the app shell, words, and Try again.

NiceGUI's own error page names the exception and its message (SQL, hosts, ids); this one
says what happened in words and offers a reload. The traceback goes to the server's log
(NiceGUI logs it right after the page is drawn: ``app.handle_exception``). The answer's
status stays NiceGUI's 500.
"""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import Request
from nicegui import app, context, ui

from core.db.availability import database_unavailable
from webui.layout import frame, guarded_actor
from webui.services import Services

TITLE = "Could not show this page"
DATABASE_AWAY = (
    "The database did not answer, so this page could not be shown. Try again in a moment."
)
FAILED = (
    "Something went wrong while this page was being built, so it could not be shown. "
    "Try again in a moment; if it keeps happening, tell your administrator."
)


def install(services: Services) -> None:
    """Draw every failed page build with ``page_failed``.

    After drawing it, NiceGUI also hands the exception to every FastAPI handler of
    ``Exception``, its own among them, which re-raises it for a request it thinks is no page:
    the error was logged twice and the re-raise left a failed background task. The handler
    kept here passes over what ``page_failed`` drew and leaves the rest to NiceGUI's.
    """
    app.on_page_exception(lambda error: page_failed(services, error))
    nicegui_handler = app.exception_handlers.get(Exception)
    if nicegui_handler is None:
        return

    async def server_error(request: Request, error: Exception) -> Any:
        if getattr(request.state, "page_failed", False):
            return None
        answer = nicegui_handler(request, error)
        return await answer if inspect.isawaitable(answer) else answer

    app.exception_handlers[Exception] = server_error


def words_for(error: Exception) -> str:
    """The sentence a person reads for ``error`` (never its type or message).

    "The database did not answer" when it did not (``core.db.availability``: down, starting
    up, refusing, a pool with nothing to lend); a query the database refused is a failure.
    """
    return DATABASE_AWAY if database_unavailable(error) else FAILED


def page_failed(services: Services, error: Exception) -> None:
    """The shell with navigation when the guard had let the actor in; a bare header if not."""
    request = context.client.request
    request.state.page_failed = True  # drawn here: see install
    actor = guarded_actor(request)
    if actor is None:
        ui.page_title(f"{TITLE} · PrecisionPulse")
        with ui.header().classes("items-center bg-slate-800"):
            ui.label("PrecisionPulse").classes("text-lg font-bold")
        with ui.column().classes("w-full p-4 gap-4"):
            ui.label(TITLE).classes("text-2xl font-semibold")
            _explain(error)
        return
    with frame(services, TITLE, actor):
        _explain(error)


def _explain(error: Exception) -> None:
    ui.label(words_for(error)).mark("page-error")
    # Reloaded by the browser itself: a server that just failed may not hold the page's
    # connection, and the page built again asks who is there.
    ui.button("Try again", icon="refresh").on(
        "click", js_handler="() => window.location.reload()"
    ).mark("try-again")
