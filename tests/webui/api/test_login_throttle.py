"""Failed sign-ins lock an account even under a burst of parallel guesses, known or not."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from core.settings import Settings
from tests.harness import running_app
from tests.webui.conftest import ADMIN_PASSWORD

# The count and the lock are database writes racing each other: run on every backend.
pytestmark = pytest.mark.backends("each")

LOGIN = "/api/v1/auth/login"
MAX_FAILURES = 5
BURST = 100


@pytest.fixture
async def client(settings: Settings, accounts: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """The server with a lock long enough to outlast the burst (the suite's default is 1 s)."""
    long_lock = settings.model_copy(
        update={"login_max_failures": MAX_FAILURES, "login_lock_seconds": 600}
    )
    async with running_app(long_lock) as client:
        yield client


async def _burst(client: httpx.AsyncClient, username: str) -> tuple[list[int], int]:
    """The status of each of BURST wrong guesses sent at once, and of the right password sent
    inside the burst as soon as MAX_FAILURES guesses have been answered.

    Which concurrent request the server counts first is the scheduler's choice, so the right
    password goes out once the threshold has surely been counted: it must then be refused,
    however many guesses are still in flight.
    """
    guesses = [
        asyncio.ensure_future(client.post(LOGIN, json={"username": username, "password": p}))
        for p in (f"guess-{i:03}" for i in range(BURST))
    ]
    for answered, future in enumerate(asyncio.as_completed(guesses), start=1):
        await future
        if answered == MAX_FAILURES:
            break
    right = await client.post(LOGIN, json={"username": username, "password": ADMIN_PASSWORD})
    codes = [(await guess).status_code for guess in guesses]
    return codes, right.status_code


@pytest.mark.parametrize("username", ["ada", "ghost"])
async def test_a_burst_of_guesses_gets_at_most_the_threshold_of_401s(
    client: httpx.AsyncClient, username: str
) -> None:
    """Of 100 parallel guesses at most 5 are checked; the rest, and the right one, get 429."""
    codes, right = await _burst(client, username)
    print(f"{username}: {sorted(Counter(codes).items())}, the right password {right}")
    assert set(codes) <= {401, 429}, codes
    assert 1 <= codes.count(401) <= MAX_FAILURES, codes
    assert right == 429
    after = await client.post(LOGIN, json={"username": username, "password": ADMIN_PASSWORD})
    assert after.status_code == 429, after.text


@pytest.mark.parametrize("username", ["ada", "ghost"])
async def test_an_unknown_username_locks_like_a_known_one(
    client: httpx.AsyncClient, username: str
) -> None:
    """Five failures, then 429 with the same words and Retry-After, whether or not it exists."""
    for _ in range(MAX_FAILURES):
        failed = await client.post(LOGIN, json={"username": username, "password": "wrong-one"})
        assert failed.status_code == 401, failed.text
    locked = await client.post(LOGIN, json={"username": username, "password": ADMIN_PASSWORD})
    assert locked.status_code == 429, locked.text
    assert locked.json()["detail"].startswith("too many failed sign-ins: try again in ")
    assert 590 <= int(locked.headers["Retry-After"]) <= 601
