"""The in-process test server leaves nothing behind that grows from one test to the next."""

from __future__ import annotations

from nicegui import core

from core.settings import Settings
from tests.harness import running_app


async def test_the_lifespan_is_not_nested_deeper_by_each_test(settings: Settings) -> None:
    before = core.app.router.lifespan_context
    for _ in range(2):
        async with running_app(settings) as client:
            assert (await client.get("/api/v1/health")).status_code == 200
    # include_router wraps the lifespan once per build; left wrapped, hundreds of tests in,
    # a shutdown runs out of stack.
    assert core.app.router.lifespan_context is before
