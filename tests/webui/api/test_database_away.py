"""A database away (nothing listening, or PostgreSQL still starting up): 503s, never 500s."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from core import tokens
from core.db.types import utcnow
from core.settings import Settings
from tests.harness import running_app
from tests.webui.database_away import KINDS, away_settings
from webui.backbone import alarms

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
