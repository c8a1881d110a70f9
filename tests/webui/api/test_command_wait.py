"""GET /api/v1/commands/{id}?wait_s=: a long poll answered when the command ends, or in time."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from nicegui import app

import webui.api.commands as api_commands
from core.db.engine import Database
from core.events import CommandChanged
from core.protocol.commands import Result
from core.services import commands
from tests.webui.api.helpers import assert_rejected
from tests.webui.conftest import LoginAs
from webui.backbone.command_waiters import CommandWaiters
from webui.services import Services

pytestmark = pytest.mark.backends("one")

COMMANDS = "/api/v1/commands"
LONG = 10.0  # a wait that a passing test never sits out


def _services() -> Services:
    services: Services = app.state.services
    return services


async def _queued(client: httpx.AsyncClient, admin: dict[str, str]) -> str:
    created = await client.post("/api/v1/devices", json={"id": "press-07"}, headers=admin)
    assert created.status_code == 201, created.text
    sent = await client.post(
        "/api/v1/devices/press-07/commands", json={"kind": "Ping"}, headers=admin
    )
    assert sent.status_code == 201, sent.text
    command_id: str = sent.json()["id"]
    return command_id


async def _succeed(database: Database, command_id: str) -> None:
    """The dispatcher's and the station's moves: attempt, sent, succeeded."""
    async with database.session() as session:
        assert await commands.attempt(session, command_id=uuid.UUID(command_id)) is not None
        assert await commands.mark_sent(session, command_id=uuid.UUID(command_id))
        answer = Result("press-07", command_id, "succeeded", result={"pong": True})
        assert await commands.record_result(session, result=answer, device_id="press-07") == "moved"


async def _waiting(count: int) -> None:
    """Until ``count`` callers wait (at most 5 s)."""
    for _ in range(500):
        if len(_services().backbone.command_waiters) == count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{count} waiting never came")


async def test_a_wait_answers_as_soon_as_the_command_ends(
    client: httpx.AsyncClient, login_as: LoginAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_commands, "REREAD_S", LONG)  # only the event can end the wait early
    admin = await login_as("ada")
    command_id = await _queued(client, admin)
    started = time.monotonic()
    waiting = asyncio.create_task(
        client.get(f"{COMMANDS}/{command_id}", params={"wait_s": LONG}, headers=admin)
    )
    await _waiting(1)
    await _succeed(_services().database, command_id)
    answer = await waiting
    assert answer.status_code == 200, answer.text
    assert (answer.json()["state"], answer.json()["result"]) == ("succeeded", {"pong": True})
    assert time.monotonic() - started < LONG / 2
    assert len(_services().backbone.command_waiters) == 0
    ended = await client.get(f"{COMMANDS}/{command_id}", params={"wait_s": LONG}, headers=admin)
    assert ended.json()["state"] == "succeeded"  # already ended: at once, no waiter
    assert len(_services().backbone.command_waiters) == 0


async def test_a_move_made_elsewhere_is_seen_by_reading_again(
    client: httpx.AsyncClient,
    login_as: LoginAs,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another replica's move announces nothing here: the wait re-reads the database."""
    monkeypatch.setattr(api_commands, "REREAD_S", 0.05)
    admin = await login_as("ada")
    command_id = await _queued(client, admin)
    waiting = asyncio.create_task(
        client.get(f"{COMMANDS}/{command_id}", params={"wait_s": LONG}, headers=admin)
    )
    await _waiting(1)
    await _succeed(database, command_id)  # the test's own Database: its own event bus
    answer = await waiting
    assert answer.status_code == 200 and answer.json()["state"] == "succeeded", answer.text


async def test_a_viewer_waits_and_gets_the_current_state_once_wait_s_passes(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin, viewer = await login_as("ada"), await login_as("vic")
    command_id = await _queued(client, admin)
    started = time.monotonic()
    answer = await client.get(f"{COMMANDS}/{command_id}", params={"wait_s": 0.3}, headers=viewer)
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "queued"
    assert time.monotonic() - started >= 0.3
    assert len(_services().backbone.command_waiters) == 0


@pytest.mark.parametrize("wait_s", ["-1", "30.5", "soon", "nan"])
async def test_a_bad_wait_is_refused_naming_it(
    client: httpx.AsyncClient, login_as: LoginAs, wait_s: str
) -> None:
    admin = await login_as("ada")
    command_id = await _queued(client, admin)
    answer = await client.get(f"{COMMANDS}/{command_id}", params={"wait_s": wait_s}, headers=admin)
    assert_rejected(answer, 422, "wait_s")


async def test_a_session_ended_during_the_wait_gets_401_not_the_command(
    client: httpx.AsyncClient, login_as: LoginAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api_commands, "REREAD_S", LONG)
    admin, viewer = await login_as("ada"), await login_as("vic")
    command_id = await _queued(client, admin)
    waiting = asyncio.create_task(
        client.get(f"{COMMANDS}/{command_id}", params={"wait_s": LONG}, headers=viewer)
    )
    await _waiting(1)
    assert (await client.post("/api/v1/auth/logout", headers=viewer)).status_code in (200, 204)
    await _succeed(_services().database, command_id)
    answer = await waiting
    assert answer.status_code == 401, answer.text
    assert "succeeded" not in answer.text and command_id not in answer.text
    assert len(_services().backbone.command_waiters) == 0


async def test_too_many_waiting_gets_429_and_an_unknown_command_404(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin = await login_as("ada")
    command_id = await _queued(client, admin)
    _services().backbone.command_waiters = CommandWaiters(limit=0)
    full = await client.get(f"{COMMANDS}/{command_id}", params={"wait_s": 1}, headers=admin)
    assert_rejected(full, 429, "wait_s")
    assert full.headers["Retry-After"] == "1"
    unknown = f"{COMMANDS}/{uuid.uuid4()}"
    assert_rejected(await client.get(unknown, params={"wait_s": 1}, headers=admin), 404)


async def test_a_cancelled_wait_leaves_no_waiter() -> None:
    waiters = CommandWaiters(limit=2)
    command_id = uuid.uuid4()

    async def wait() -> None:
        with waiters.watch(command_id) as woken:
            assert woken is not None
            await woken.wait()

    tasks = [asyncio.create_task(wait()) for _ in range(2)]
    await asyncio.sleep(0)
    assert len(waiters) == 2
    with waiters.watch(command_id) as refused:
        assert refused is None
    tasks[0].cancel()
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]
    assert len(waiters) == 1
    await waiters.on_changed(CommandChanged(command_id, "press-07", "sent"))
    await asyncio.sleep(0)
    assert not tasks[1].done()  # not an end state: nobody woken
    await waiters.on_changed(CommandChanged(command_id, "press-07", "failed"))
    await asyncio.wait_for(tasks[1], 1)
    assert len(waiters) == 0
