"""A database away (nothing listening, or PostgreSQL still starting up): 503s, never 500s."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import make_url

from bench.chaos.proxy import FaultProxy
from core import tokens
from core.db.availability import database_unavailable
from core.db.types import utcnow
from core.settings import Settings
from tests.harness import running_app
from tests.webui.database_away import KINDS, away_settings, free_port
from webui.backbone import alarms, server
from webui.backbone.server import Backbone

# The loggers of a request's answer (the server's background tasks have their own, and meet
# the same outage while the test runs).
_ANSWERING = ("webui.api", "webui.deps", "fastapi", "starlette", "uvicorn")


@pytest.fixture(params=KINDS)
async def away(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    """The server, started against a database that is away, and its settings."""
    # On stop, alarms wait this long for a load that cannot succeed here (5 s a test).
    monkeypatch.setattr(alarms, "STOP_WAIT_S", 0.1)
    async with away_settings(request.param, tmp_path) as settings, running_app(settings) as client:
        yield client, settings


def _assert_away(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert "database" in response.json()["detail"]


async def test_an_authenticated_route_answers_503_with_retry_after(
    away: tuple[httpx.AsyncClient, Settings], caplog: pytest.LogCaptureFixture
) -> None:
    client, settings = away
    # Well signed, so the check of its sign-in session is what meets the database.
    token = tokens.issue_access_token(
        secret=settings.secret_key,
        user_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        now=utcnow(),
        ttl=timedelta(minutes=5),
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        response = await client.get("/api/v1/devices", headers={"Authorization": f"Bearer {token}"})
    _assert_away(response)
    # One line says so; no traceback per request.
    said = [r for r in caplog.records if r.name == "webui.api.errors"]
    assert len(said) == 1 and said[0].exc_info is None, [r.getMessage() for r in said]
    assert "database unavailable" in said[0].getMessage()
    answering = [r for r in caplog.records if r.name.startswith(_ANSWERING) and r.exc_info]
    assert not answering, [r.getMessage() for r in answering]


async def test_signing_in_and_refreshing_answer_503(
    away: tuple[httpx.AsyncClient, Settings],
) -> None:
    client, _ = away
    login = await client.post("/api/v1/auth/login", json={"username": "ada", "password": "pw"})
    _assert_away(login)
    refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": "x" * 43})
    _assert_away(refresh)


async def test_health_reports_not_ready(away: tuple[httpx.AsyncClient, Settings]) -> None:
    client, _ = away
    response = await client.get("/api/v1/health")
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) > 0
    body = response.json()
    assert body["status"] == "unavailable" and body["database"] == "unavailable"
    assert body["broker"]["state"] == "disabled"


@pytest.mark.parametrize("kind", KINDS)
async def test_background_rounds_say_so_in_a_line_not_a_traceback(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The server starts whole and its own loops (alarms loader, upkeep, checkpoints, the
    fan-out's listener…) wait the outage out, each failed round one line."""
    monkeypatch.setattr(alarms, "STOP_WAIT_S", 0.1)
    monkeypatch.setattr(alarms, "LOAD_RETRY_S", 0.2)  # a few failed rounds within the test
    with caplog.at_level(logging.WARNING):
        async with away_settings(kind, tmp_path) as away:
            # The broker's accounts are written from the database at start too.
            settings = away.model_copy(update={"broker_password_file": tmp_path / "passwd"})
            async with running_app(settings):
                for _ in range(100):
                    await asyncio.sleep(0.05)
                    said = [r for r in caplog.records if r.name == alarms.__name__]
                    if len(said) >= 2:
                        break
    said = [r for r in caplog.records if r.name == alarms.__name__]
    assert len(said) >= 2, [r.getMessage() for r in caplog.records]
    assert all("database unavailable" in r.getMessage() for r in said)
    outage_tracebacks = [
        r.getMessage()
        for r in caplog.records
        if r.exc_info and r.exc_info[1] and database_unavailable(r.exc_info[1])
    ]
    assert not outage_tracebacks
    # Nothing failed outright: a start step that raised (the fan-out's first listen, the
    # sync log's first sequencing did) left the rest of the server unstarted, for good.
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors


@pytest.mark.production_database
async def test_a_server_started_before_its_database_recovers_when_it_answers(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the fan-out and a database that comes back are PostgreSQL's")
    monkeypatch.setattr(alarms, "STOP_WAIT_S", 0.1)
    monkeypatch.setattr(alarms, "LOAD_RETRY_S", 0.2)
    started: list[Backbone] = []
    start = Backbone.start

    async def recorded(self: Backbone) -> None:
        started.append(self)
        await start(self)

    monkeypatch.setattr(Backbone, "start", recorded)
    real = make_url(database_url)
    port = free_port()
    monkeypatch.setattr(server, "ACCOUNTS_RETRY_S", 0.2)
    passwords = tmp_path / "broker" / "passwd"
    settings = Settings(
        database_url=real.set(port=port).render_as_string(hide_password=False),
        mqtt_url="",
        signing_key_file=tmp_path / "keys" / "server-signing-key.pem",
        broker_password_file=passwords,  # holding the server's own account, once written
        mqtt_username="server",
        mqtt_password="server-secret",
    )
    # The database comes back later: a plain forwarder starts listening on that port.
    forwarder = FaultProxy(real.host or "127.0.0.1", real.port or 5432, listen_port=port)
    try:
        async with running_app(settings) as client:
            assert (await client.get("/api/v1/health")).status_code == 503
            [backbone] = started
            assert backbone.fanout.listening_pid is None
            assert not passwords.exists()
            await forwarder.start()
            for _ in range(300):
                healthy = (await client.get("/api/v1/health")).status_code == 200
                if healthy and backbone.fanout.listening_pid is not None and passwords.exists():
                    break
                await asyncio.sleep(0.1)
            assert healthy, "the API never came back"
            assert backbone.fanout.listening_pid is not None, "the fan-out never listened"
            assert passwords.exists(), "the broker's accounts were never written"
    finally:
        await forwarder.stop()  # after the server's stop, which may still use the database
