"""Pages whose data cannot be read: a page in words with its shell, and live pages that recover."""

from __future__ import annotations

import logging
import re
import uuid
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import pytest
from nicegui import app
from nicegui.client import Client
from nicegui.testing.user import User
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from core.protocol.messages import Status
from core.services import devices
from core.services.actor import Actor
from tests.harness import simulated_user
from tests.webui.conftest import ADMIN_PASSWORD
from tests.webui.database_away import KINDS, away_settings
from tests.webui.pages.test_admin_screens import eventually
from tests.webui.pages.test_login import signed_in
from webui import signin
from webui.backbone import alarms
from webui.components.page_error import DATABASE_AWAY
from webui.components.ticker import PAUSED, RESUMED
from webui.services import Services

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

ROUTES = [
    "/",
    "/fleet",
    "/devices",
    "/users",
    "/roles",
    "/audit",
    "/devices/press-1",
    "/devices/press-1/history",
    "/commands",
    "/telemetry/quarantine",
]
# What NiceGUI's own error page shows of an exception, and what no page should.
NOT_IN_WORDS = ("Traceback", "Error(", "OperationalError", "refused", "Server error")
SHELL = Actor(name="ada", permissions=frozenset({"devices:read", "devices:write"}))


def _services() -> Services:
    services: Services = app.state.services
    return services


class _Reachable:
    """The database as the sign-in check sees it: still answering."""

    def __init__(self, session: object) -> None:
        self.session = session


def _database_away(monkeypatch: pytest.MonkeyPatch, *, sign_in_too: bool = False) -> None:
    """Every read of the page's data fails as an unreachable PostgreSQL does.

    Unless ``sign_in_too``, the sign-in check keeps the real session, so the page gets as far
    as its own data.
    """
    database = _services().database
    reachable = _Reachable(database.session)
    check = signin.current_actor

    def away() -> AbstractAsyncContextManager[AsyncSession]:
        raise OperationalError("SELECT", {}, ConnectionRefusedError("connection refused"))

    async def current_actor(_database: object) -> Actor | None:
        return await check(reachable)  # type: ignore[arg-type]

    monkeypatch.setattr(database, "session", away)
    if not sign_in_too:
        monkeypatch.setattr(signin, "current_actor", current_actor)


async def _open_failed(user: User, route: str) -> int:
    """Open a page that answers with an error status (``User.open`` takes 200 only)."""
    response = await user.http_client.get(route, follow_redirects=True)
    match = re.search(r"'client_id': '([0-9a-f-]+)'", response.text)
    assert match is not None, response.text
    user.client = Client.instances[match.group(1)]
    return response.status_code


@pytest.mark.parametrize("route", ROUTES)
async def test_a_page_whose_data_cannot_be_read_says_so_in_words(
    user: User,
    route: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await signed_in(user, "ada", ADMIN_PASSWORD)
    _database_away(monkeypatch)
    assert await _open_failed(user, route) == 500
    await user.should_see(content=DATABASE_AWAY, marker="page-error")
    await user.should_see(content="Try again", marker="try-again")
    await user.should_see(content="ada · Admin", marker="current-user")  # in the app's shell
    await user.should_see(marker="nav Overview")
    for text in NOT_IN_WORDS:
        await user.should_not_see(text)
    # The server's log has the traceback, once.
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert len(logged) == 1, [r.getMessage() for r in logged]
    assert isinstance(logged[0].exc_info[1], OperationalError)  # type: ignore[index]
    caplog.clear()
    monkeypatch.undo()  # before the server stops: its audit trail reads the database then


async def test_a_page_that_cannot_even_check_who_is_signed_in_says_so_too(
    user: User, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await signed_in(user, "ada", ADMIN_PASSWORD)
    _database_away(monkeypatch, sign_in_too=True)
    assert await _open_failed(user, "/fleet") == 500
    await user.should_see(content=DATABASE_AWAY, marker="page-error")
    await user.should_see(content="Try again", marker="try-again")
    await user.should_not_see(marker="current-user")  # nobody known: no navigation to offer
    button = user.find(marker="try-again").elements.pop()
    handlers = [listener.js_handler for listener in button._event_listeners.values()]
    assert handlers == ["() => window.location.reload()"]  # the browser reloads, socket or not
    for text in NOT_IN_WORDS:
        await user.should_not_see(text)
    caplog.clear()
    monkeypatch.undo()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_page_while_postgresql_is_away_says_the_database_did_not_answer(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alarms, "STOP_WAIT_S", 0.1)  # its load cannot succeed: stop at once
    async with away_settings(kind, tmp_path) as settings, simulated_user(settings) as user:
        await user.http_client.get("/login")  # the browser's storage, made
        # A browser signed in before PostgreSQL went away: its sign-in session is in the
        # database, which the page must ask about (NiceGUI keeps no public way in).
        for browser in app.storage._users.values():
            browser[signin.SESSION_KEY] = str(uuid.uuid4())
        assert await _open_failed(user, "/fleet") == 500
        await user.should_see(content=DATABASE_AWAY, marker="page-error")
        await user.should_see(content="Try again", marker="try-again")


async def test_a_live_page_whose_ticks_fail_says_so_once_and_recovers(
    user: User, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with _services().database.session() as session:
        await devices.create_device(session, actor=SHELL, device_id="kiln-1")
    await signed_in(user, "ada", ADMIN_PASSWORD)  # lands on the overview: its one page open
    await user.should_see(content="of 1 device", retries=30, marker="detail online")
    presence = _services().backbone.presence
    failed: list[int] = []

    def states() -> list[object]:
        failed.append(1)
        raise ConnectionError("presence away")

    monkeypatch.setattr(presence, "states", states)
    await eventually(lambda: len(failed) >= 5)  # several failing ticks
    assert user.notify.messages.count(PAUSED) == 1, user.notify.messages
    ticker_errors = [r for r in caplog.records if r.name == "webui.components.ticker"]
    assert [r.levelno for r in ticker_errors] == [logging.ERROR]
    caplog.clear()

    monkeypatch.undo()
    await eventually(lambda: RESUMED in user.notify.messages)
    await presence.on_status(Status("kiln-1", "online"))
    await user.should_see(content="1", retries=30, marker="number online")
    assert user.notify.messages.count(PAUSED) == 1
