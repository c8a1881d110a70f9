"""Runs the real server in-process for tests: API through httpx, pages through NiceGUI's User."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from nicegui import core, ui
from nicegui.functions.download import download
from nicegui.functions.navigate import Navigate
from nicegui.functions.notify import notify
from nicegui.testing.general import nicegui_reset_globals, prepare_simulation
from nicegui.testing.user import User

from core.settings import Settings
from webui.app import build, run_kwargs


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The composed server, started (lifespan run) and reachable through an ASGI client."""
    # FastAPI's include_router wraps the app's lifespan around the router's, and NiceGUI's
    # reset leaves it wrapped: without putting it back, every test nests it deeper, until
    # a late test's shutdown runs out of stack (RecursionError) hundreds of tests in.
    lifespan = core.app.router.lifespan_context
    with nicegui_reset_globals():
        os.environ["NICEGUI_USER_SIMULATION"] = "true"
        try:
            prepare_simulation()
            build(settings)
            ui.run(**run_kwargs(settings))  # type: ignore[arg-type]
            async with (
                core.app.router.lifespan_context(core.app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(core.app), base_url="http://test"
                ) as client,
            ):
                yield client
        finally:
            os.environ.pop("NICEGUI_USER_SIMULATION", None)
            ui.navigate = Navigate()
            ui.notify = notify
            ui.download = download
            core.app.router.lifespan_context = lifespan


@asynccontextmanager
async def simulated_user(settings: Settings) -> AsyncIterator[User]:
    """A simulated browser user of the composed server."""
    async with running_app(settings) as client:
        yield User(client)
