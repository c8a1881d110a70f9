"""A password change, reset, disable or delete ends the account's other sign-in sessions."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.webui.conftest import ADMIN_PASSWORD, VIEWER_PASSWORD

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

LOGIN, REFRESH, ME, USERS = (
    "/api/v1/auth/login",
    "/api/v1/auth/refresh",
    "/api/v1/auth/me",
    "/api/v1/users",
)


async def _sign_in(client: httpx.AsyncClient, username: str, password: str) -> dict[str, Any]:
    response = await client.post(LOGIN, json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def _bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def _works(client: httpx.AsyncClient, tokens: dict[str, Any]) -> tuple[int, int]:
    """The status of /me with the access token, then of a refresh with the refresh token."""
    me = await client.get(ME, headers=_bearer(tokens))
    refreshed = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    return me.status_code, refreshed.status_code


async def _ids(client: httpx.AsyncClient, tokens: dict[str, Any]) -> dict[str, str]:
    listed = (await client.get(USERS, headers=_bearer(tokens))).json()
    return {u["username"]: u["id"] for u in listed}


async def test_a_reset_ends_the_users_sessions_but_not_the_admins(
    client: httpx.AsyncClient,
) -> None:
    """After ada resets vic's password, vic's old access and refresh tokens get 401."""
    ada, vic = (
        await _sign_in(client, "ada", ADMIN_PASSWORD),
        await _sign_in(client, "vic", VIEWER_PASSWORD),
    )
    vic_id = (await _ids(client, ada))["vic"]
    reset = await client.patch(
        f"{USERS}/{vic_id}", json={"password": "brand-new-pass"}, headers=_bearer(ada)
    )
    assert reset.status_code == 200, reset.text
    assert await _works(client, vic) == (401, 401)
    assert (await client.get(ME, headers=_bearer(ada))).status_code == 200
    assert (await _sign_in(client, "vic", "brand-new-pass"))["access_token"]


async def test_changing_ones_own_password_keeps_this_session_and_ends_the_others(
    client: httpx.AsyncClient,
) -> None:
    """ada changes her password in one session: it goes on, her other session ends."""
    here, elsewhere = (
        await _sign_in(client, "ada", ADMIN_PASSWORD),
        await _sign_in(client, "ada", ADMIN_PASSWORD),
    )
    ada_id = (await _ids(client, here))["ada"]
    changed = await client.patch(
        f"{USERS}/{ada_id}", json={"password": "brand-new-pass"}, headers=_bearer(here)
    )
    assert changed.status_code == 200, changed.text
    assert await _works(client, elsewhere) == (401, 401)
    assert await _works(client, here) == (200, 200)


async def test_disabling_ends_sessions_for_good(client: httpx.AsyncClient) -> None:
    """Tokens of a disabled user stay dead when the account is enabled again."""
    ada, vic = (
        await _sign_in(client, "ada", ADMIN_PASSWORD),
        await _sign_in(client, "vic", VIEWER_PASSWORD),
    )
    url = f"{USERS}/{(await _ids(client, ada))['vic']}"
    assert (await client.patch(url, json={"is_active": False}, headers=_bearer(ada))).is_success
    assert (await client.get(ME, headers=_bearer(vic))).status_code == 401
    assert (await client.patch(url, json={"is_active": True}, headers=_bearer(ada))).is_success
    assert await _works(client, vic) == (401, 401)


async def test_deleting_ends_sessions(client: httpx.AsyncClient) -> None:
    """A deleted user's access and refresh tokens get 401."""
    ada, vic = (
        await _sign_in(client, "ada", ADMIN_PASSWORD),
        await _sign_in(client, "vic", VIEWER_PASSWORD),
    )
    url = f"{USERS}/{(await _ids(client, ada))['vic']}"
    assert (await client.delete(url, headers=_bearer(ada))).status_code == 204
    assert await _works(client, vic) == (401, 401)
