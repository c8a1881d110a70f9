"""An unknown username costs a sign-in as long as a wrong password: timing names no one."""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from core.settings import Settings
from tests.harness import running_app

# The real argon2 cost, which the rest of the suite lowers (tests/conftest.py): the gap to
# hide is one password check, so it must cost what it costs in production.
pytestmark = [pytest.mark.production_argon2, pytest.mark.backends("one")]

LOGIN = "/api/v1/auth/login"
TRIES = 5  # per kind; medians of 5 shrug off a slow outlier on a busy 2-core machine


@pytest.fixture
async def client(settings: Settings, accounts: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """The server with a threshold the measurements never reach."""
    async with running_app(settings.model_copy(update={"login_max_failures": 1000})) as client:
        yield client


async def _seconds(client: httpx.AsyncClient, username: str) -> float:
    started = time.perf_counter()
    response = await client.post(LOGIN, json={"username": username, "password": "wrong-pass"})
    elapsed = time.perf_counter() - started
    assert response.status_code == 401, response.text
    return elapsed


async def test_unknown_user_takes_as_long_as_a_wrong_password(client: httpx.AsyncClient) -> None:
    """The medians of both kinds of failure are within a factor of two of each other."""
    await _seconds(client, "ada")  # warm up: first connections, first queries
    wrong, unknown = [], []
    for i in range(TRIES):  # interleaved, so a busy moment slows both kinds alike
        wrong.append(await _seconds(client, "ada"))
        unknown.append(await _seconds(client, f"nobody-{i}"))
    known_s, unknown_s = statistics.median(wrong), statistics.median(unknown)
    print(f"median wrong password {known_s * 1000:.1f} ms, unknown user {unknown_s * 1000:.1f} ms")
    assert unknown_s >= 0.5 * known_s, (wrong, unknown)
    assert unknown_s <= 2 * known_s, (wrong, unknown)
