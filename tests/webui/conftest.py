"""Fixtures for the server: an API client, signed-in callers, simulated browser users, and
a broker two replicas share."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from nicegui.testing.user import User

from broker.mosquitto_process import MosquittoProcess
from core.db.engine import Database
from core.services import users
from core.settings import Settings
from tests.harness import running_app, simulated_user
from tests.webui.replicas import replica_broker as started_replica_broker

ADMIN_PASSWORD = "admin-password-1"
VIEWER_PASSWORD = "viewer-password-1"


@pytest.fixture
async def accounts(database: Database) -> dict[str, str]:
    """An Admin 'ada' and a Viewer 'vic', created as the shell would."""
    async with database.session() as session:
        await users.bootstrap_user(
            session, username="ada", password=ADMIN_PASSWORD, roles=["Admin"]
        )
        await users.bootstrap_user(
            session, username="vic", password=VIEWER_PASSWORD, roles=["Viewer"]
        )
    return {"ada": ADMIN_PASSWORD, "vic": VIEWER_PASSWORD}


@pytest.fixture
async def replica_broker(tmp_path: Path) -> AsyncIterator[MosquittoProcess]:
    """Mosquitto with our ACL and two server accounts, one per replica (tests.webui.replicas)."""
    async with started_replica_broker(tmp_path) as broker:
        yield broker


@pytest.fixture
async def client(settings: Settings, accounts: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """An anonymous HTTP client of the running server."""
    async with running_app(settings) as client:
        yield client


LoginAs = Callable[[str], Awaitable[dict[str, str]]]


@pytest.fixture
def login_as(client: httpx.AsyncClient, accounts: dict[str, str]) -> LoginAs:
    """Sign in through the API and return the Authorization header."""

    async def login(username: str) -> dict[str, str]:
        response = await client.post(
            "/api/v1/auth/login", json={"username": username, "password": accounts[username]}
        )
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    return login


@pytest.fixture
async def user(
    settings: Settings, accounts: dict[str, str], caplog: pytest.LogCaptureFixture
) -> AsyncIterator[User]:
    """A simulated browser user; any ERROR log during the test fails it."""
    async with simulated_user(settings) as user:
        yield user
    errors = [r for r in caplog.get_records("call") if r.levelname == "ERROR"]
    assert not errors, [r.getMessage() for r in errors]
