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
RIGHT_AT = 45  # the right password, well inside the burst


@pytest.fixture
async def client(settings: Settings, accounts: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    """The server with a lock long enough to outlast the burst (the suite's default is 1 s)."""
    long_lock = settings.model_copy(
        update={"login_max_failures": MAX_FAILURES, "login_lock_seconds": 600}
    )
    async with running_app(long_lock) as client:
        yield client


async def _burst(client: httpx.AsyncClient, username: str) -> list[int]:
    """The status of each of BURST sign-ins sent at once, the right password at RIGHT_AT."""
    passwords = [ADMIN_PASSWORD if i == RIGHT_AT else f"guess-{i:03}" for i in range(BURST)]
    responses = await asyncio.gather(
        *(client.post(LOGIN, json={"username": username, "password": p}) for p in passwords)
    )
    return [r.status_code for r in responses]


@pytest.mark.parametrize("username", ["ada", "ghost"])
async def test_a_burst_of_guesses_gets_at_most_the_threshold_of_401s(
    client: httpx.AsyncClient, username: str
) -> None:
    """Of 100 parallel guesses at most 5 are checked; the rest, the right one too, get 429."""
    codes = await _burst(client, username)
    print(f"{username}: {sorted(Counter(codes).items())}, the right password {codes[RIGHT_AT]}")
    assert set(codes) <= {401, 429}, codes
    assert 1 <= codes.count(401) <= MAX_FAILURES, codes
    assert codes[RIGHT_AT] == 429, codes
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
