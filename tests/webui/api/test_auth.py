"""Sign-in, token rotation, reuse detection, sign-out, locking and their audit trail."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.webui.api.helpers import audit_entries
from tests.webui.conftest import ADMIN_PASSWORD, LoginAs

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

LOGIN, REFRESH, ME = "/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/auth/me"


async def _login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(LOGIN, json={"username": username, "password": password})


def _bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_login_gives_tokens_that_open_me(client: httpx.AsyncClient) -> None:
    """A right password gives a bearer token for the right user."""
    response = await _login(client, "ada", ADMIN_PASSWORD)
    assert response.status_code == 200, response.text
    tokens = response.json()
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 15 * 60
    me = await client.get(ME, headers=_bearer(tokens))
    assert me.status_code == 200 and me.json()["username"] == "ada"


async def test_wrong_password_and_unknown_user_get_the_same_401(client: httpx.AsyncClient) -> None:
    """Both say why, and neither reveals whether the username exists."""
    wrong = await _login(client, "ada", "not-the-password")
    unknown = await _login(client, "nobody", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json() == {"detail": "wrong username or password"}


async def test_me_lists_roles_and_permissions(client: httpx.AsyncClient, login_as: LoginAs) -> None:
    """The Viewer sees exactly the Viewer's role and two permissions."""
    me = (await client.get(ME, headers=await login_as("vic"))).json()
    assert me["roles"] == ["Viewer"]
    assert me["permissions"] == ["devices:read", "telemetry:read"]


async def test_refresh_rotates_and_the_old_refresh_token_stops_working(
    client: httpx.AsyncClient,
) -> None:
    """Each refresh hands out a new pair; the used refresh token is refused."""
    first = (await _login(client, "ada", ADMIN_PASSWORD)).json()
    second = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    assert second.json()["refresh_token"] != first["refresh_token"]
    assert (await client.get(ME, headers=_bearer(second.json()))).status_code == 200
    again = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert again.status_code == 401 and "already used" in again.json()["detail"]


async def test_reusing_a_refresh_token_revokes_the_whole_family(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    """After a replay, the newest refresh token and the session's access token fail too."""
    first = (await _login(client, "ada", ADMIN_PASSWORD)).json()
    newest = (await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})).json()
    replay = await client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    after = await client.post(REFRESH, json={"refresh_token": newest["refresh_token"]})
    assert after.status_code == 401
    assert (await client.get(ME, headers=_bearer(newest))).status_code == 401
    revoked = await audit_entries(
        client, await login_as("ada"), action="auth.session_revoked.refresh_token_reuse"
    )
    assert len(revoked) == 1


async def test_unknown_refresh_token_is_401(client: httpx.AsyncClient) -> None:
    """A made-up refresh token is refused with a reason."""
    response = await client.post(REFRESH, json={"refresh_token": "made-up"})
    assert response.status_code == 401 and response.json()["detail"]


async def test_logout_ends_the_access_token_at_once(client: httpx.AsyncClient) -> None:
    """The access token of a signed-out session fails at once, as does its refresh token."""
    tokens = (await _login(client, "ada", ADMIN_PASSWORD)).json()
    out = await client.post("/api/v1/auth/logout", headers=_bearer(tokens))
    assert out.status_code == 204
    assert (await client.get(ME, headers=_bearer(tokens))).status_code == 401
    refresh = await client.post(REFRESH, json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401


async def test_logout_leaves_other_sessions_alone(client: httpx.AsyncClient) -> None:
    """Signing out on one device does not sign the user out elsewhere."""
    one = (await _login(client, "ada", ADMIN_PASSWORD)).json()
    two = (await _login(client, "ada", ADMIN_PASSWORD)).json()
    await client.post("/api/v1/auth/logout", headers=_bearer(one))
    assert (await client.get(ME, headers=_bearer(two))).status_code == 200


async def test_disabled_user_cannot_sign_in_and_their_token_stops(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    """Disabling vic ends vic's existing session and refuses a new sign-in."""
    admin, viewer = await login_as("ada"), await login_as("vic")
    vic_id = (await client.get(ME, headers=viewer)).json()["id"]
    disabled = await client.patch(
        f"/api/v1/users/{vic_id}", json={"is_active": False}, headers=admin
    )
    assert disabled.status_code == 200, disabled.text
    assert (await client.get(ME, headers=viewer)).status_code == 401
    assert (await _login(client, "vic", "viewer-password-1")).status_code == 401


async def test_repeated_failures_lock_the_account_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    """Five failures lock; even the right password gets 429 until the lock ends."""
    for _ in range(5):
        assert (await _login(client, "ada", "wrong-password")).status_code == 401
    locked = await _login(client, "ada", ADMIN_PASSWORD)
    assert locked.status_code == 429, locked.text
    assert int(locked.headers["Retry-After"]) >= 1
    assert "try again" in locked.json()["detail"]
    await asyncio.sleep(int(locked.headers["Retry-After"]) + 0.1)
    assert (await _login(client, "ada", ADMIN_PASSWORD)).status_code == 200


async def test_every_failure_is_in_the_audit_log(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    """Wrong passwords, unknown users and locked attempts each leave an audit row."""
    for _ in range(5):
        await _login(client, "vic", "wrong-password")
    await _login(client, "ghost", "wrong-password")
    await _login(client, "vic", "viewer-password-1")
    admin = await login_as("ada")
    failed = await audit_entries(client, admin, action="auth.login_failed")
    assert sorted(r["actor"] for r in failed) == ["ghost"] + ["vic"] * 5
    assert max(r["after"]["failures"] for r in failed if r["actor"] == "vic") == 5
    locked = await audit_entries(client, admin, action="auth.login_locked")
    assert [r["actor"] for r in locked] == ["vic"]
