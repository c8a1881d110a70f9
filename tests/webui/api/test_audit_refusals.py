"""Token refreshes and permission refusals in the audit log; refusals at most one a minute."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from core.db.engine import Database
from core.db.types import utcnow
from core.services import audit, refusals, users
from tests.webui.api.helpers import audit_entries
from tests.webui.conftest import ADMIN_PASSWORD, LoginAs

USERS = "/api/v1/users"  # needs users:manage, which the Viewer lacks


async def _verified(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    body = (await client.get("/api/v1/audit/verify", headers=admin)).json()
    assert (body["status"], body["intact"]) == ("intact", True), body


async def test_a_refresh_is_audited_without_its_tokens(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    login = await client.post(
        "/api/v1/auth/login", json={"username": "ada", "password": ADMIN_PASSWORD}
    )
    tokens = login.json()
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    admin = await login_as("ada")
    [entry] = await audit_entries(client, admin, action="auth.refresh")
    assert entry["actor"] == "ada"
    shown = str(entry)
    for secret in (*tokens.values(), *refreshed.json().values()):
        assert str(secret) not in shown or len(str(secret)) < 8
    assert len(entry["after"]["session"]) == 8
    # A refused refresh (the used token again) is no refresh.
    again = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert again.status_code == 401
    assert len(await audit_entries(client, admin, action="auth.refresh")) == 1
    await _verified(client, admin)


async def test_parallel_refusals_write_one_entry_a_window(
    client: httpx.AsyncClient, login_as: LoginAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, viewer = await login_as("ada"), await login_as("vic")
    answers = await asyncio.gather(*(client.get(USERS, headers=viewer) for _ in range(50)))
    assert [a.status_code for a in answers] == [403] * 50
    await refusals.settled()
    [entry] = await audit_entries(client, admin, action="access.denied")
    assert (entry["actor"], entry["target_type"], entry["target_id"]) == (
        "vic",
        "route",
        f"GET {USERS}",
    )
    assert entry["after"] == {"permission": "users:manage", "refusals": 1}

    later = utcnow() + refusals.WINDOW + timedelta(seconds=1)
    monkeypatch.setattr(refusals, "utcnow", lambda: later)
    assert (
        await client.get(f"{USERS}/00000000-0000-0000-0000-000000000000", headers=viewer)
    ).status_code == 403
    assert (await client.get(USERS, headers=viewer)).status_code == 403
    await refusals.settled()
    entries = await audit_entries(client, admin, action="access.denied")
    assert len(entries) == 3, entries
    by_route = {e["target_id"]: e["after"]["refusals"] for e in entries[:2]}
    # The 49 folded into the first window's entry are counted in the next one.
    assert by_route == {f"GET {USERS}": 50, f"GET {USERS}/{{user_id}}": 1}
    await _verified(client, admin)


async def test_a_refusal_is_answered_even_when_its_audit_fails(
    client: httpx.AsyncClient, login_as: LoginAs, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin, viewer = await login_as("ada"), await login_as("vic")

    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("audit log unwritable")

    working = audit.lock
    monkeypatch.setattr(audit, "lock", broken)
    answer = await client.get(USERS, headers=viewer)
    assert answer.status_code == 403 and answer.json()["detail"] == "'users:manage' is required"
    await refusals.settled()
    monkeypatch.setattr(audit, "lock", working)
    later = utcnow() + refusals.WINDOW + timedelta(seconds=1)
    monkeypatch.setattr(refusals, "utcnow", lambda: later)
    await client.get(USERS, headers=viewer)
    await refusals.settled()
    [entry] = await audit_entries(client, admin, action="access.denied")
    assert entry["after"]["refusals"] == 2  # the unwritten one is folded into the next


async def test_a_long_poll_refusal_is_audited_like_any_other(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database
) -> None:
    """The command long poll checks the caller on each read itself, not through ``require``."""
    admin = await login_as("ada")
    role = await client.post(
        "/api/v1/roles", json={"name": "Blind", "permissions": []}, headers=admin
    )
    assert role.status_code == 201, role.text
    async with database.session() as session:
        await users.bootstrap_user(
            session, username="bea", password="blind-password-1", roles=["Blind"]
        )
    login = await client.post(
        "/api/v1/auth/login", json={"username": "bea", "password": "blind-password-1"}
    )
    blind = {"Authorization": f"Bearer {login.json()['access_token']}"}
    command = "/api/v1/commands/00000000-0000-0000-0000-000000000000"
    for wait in (0, 1):
        answer = await client.get(command, params={"wait_s": wait}, headers=blind)
        assert answer.status_code == 403, answer.text
    await refusals.settled()
    [entry] = await audit_entries(client, admin, action="access.denied")
    assert (entry["actor"], entry["target_id"]) == ("bea", "GET /api/v1/commands/{command_id}")
    assert entry["after"] == {"permission": "devices:read", "refusals": 1}
