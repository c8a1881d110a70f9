"""User accounts through the API: CRUD, validation, the last Admin, and the audit trail."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.webui.api.helpers import assert_rejected, audit_entries
from tests.webui.conftest import LoginAs

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

USERS = "/api/v1/users"


async def _create(
    client: httpx.AsyncClient, admin: dict[str, str], **body: object
) -> httpx.Response:
    return await client.post(USERS, json={"password": "long-enough-1", **body}, headers=admin)


async def _id_of(client: httpx.AsyncClient, admin: dict[str, str], username: str) -> str:
    users = (await client.get(USERS, headers=admin)).json()
    return next(u["id"] for u in users if u["username"] == username)


async def test_create_read_update_delete(client: httpx.AsyncClient, login_as: LoginAs) -> None:
    """A user goes through its whole life and the list follows along."""
    admin = await login_as("ada")
    created = await _create(client, admin, username="olga", display_name="Olga", roles=["Viewer"])
    assert created.status_code == 201, created.text
    user = created.json()
    assert (user["username"], user["roles"], user["is_active"]) == ("olga", ["Viewer"], True)
    assert "password" not in user and "password_hash" not in user
    url = f"{USERS}/{user['id']}"
    assert (await client.get(url, headers=admin)).json()["display_name"] == "Olga"
    patched = await client.patch(url, json={"roles": ["Admin", "Viewer"]}, headers=admin)
    assert patched.json()["roles"] == ["Admin", "Viewer"]
    assert (await client.delete(url, headers=admin)).status_code == 204
    assert (await client.get(url, headers=admin)).status_code == 404
    assert "olga" not in [u["username"] for u in (await client.get(USERS, headers=admin)).json()]


async def test_new_password_works_and_old_one_does_not(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    """Changing a password through PATCH takes effect at the next sign-in."""
    admin = await login_as("ada")
    vic = await _id_of(client, admin, "vic")
    await client.patch(f"{USERS}/{vic}", json={"password": "brand-new-pass"}, headers=admin)
    login = "/api/v1/auth/login"
    old = await client.post(login, json={"username": "vic", "password": "viewer-password-1"})
    new = await client.post(login, json={"username": "vic", "password": "brand-new-pass"})
    assert (old.status_code, new.status_code) == (401, 200)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "a b"}, "username"),
        ({"username": "x"}, "username"),
        ({"username": "okname", "password": "short"}, "password"),
        ({"username": "okname", "roles": ["Wizard"]}, "roles"),
        ({"username": "okname", "is_admin": True}, "is_admin"),
        ({"username": "okname", "display_name": "nul\x00byte"}, "display_name"),
        ({"username": "okname", "roles": ["Viewer\x00"]}, "roles"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, login_as: LoginAs, body: dict[str, object], field: str
) -> None:
    """Each mistake is refused with the field it concerns, and nothing is created."""
    admin = await login_as("ada")
    assert_rejected(await _create(client, admin, **body), 422, field)
    assert len((await client.get(USERS, headers=admin)).json()) == 2


@pytest.mark.backends("each")  # a constraint or stored data, per database
async def test_duplicate_username_is_409(client: httpx.AsyncClient, login_as: LoginAs) -> None:
    """A taken username (even of a deleted user) is a conflict naming the field."""
    admin = await login_as("ada")
    assert_rejected(await _create(client, admin, username="vic"), 409, "username")
    await client.delete(f"{USERS}/{await _id_of(client, admin, 'vic')}", headers=admin)
    assert_rejected(await _create(client, admin, username="vic"), 409, "username")


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_unknown_and_malformed_ids(
    client: httpx.AsyncClient, login_as: LoginAs, method: str
) -> None:
    """An unknown id is 404; something that is not a UUID is 422 naming user_id."""
    admin = await login_as("ada")
    body = {"display_name": "x"} if method == "PATCH" else None
    unknown = await client.request(method, f"{USERS}/{uuid.uuid4()}", json=body, headers=admin)
    assert_rejected(unknown, 404)
    malformed = await client.request(method, f"{USERS}/not-a-uuid", json=body, headers=admin)
    assert_rejected(malformed, 422, "user_id")


@pytest.mark.parametrize(
    "change", [{"is_active": False}, {"roles": ["Viewer"]}, {"roles": []}, "delete"]
)
async def test_the_last_active_admin_cannot_be_removed(
    client: httpx.AsyncClient, login_as: LoginAs, change: dict[str, object] | str
) -> None:
    """Disabling, demoting or deleting the only Admin is 409, and ada stays an Admin."""
    admin = await login_as("ada")
    url = f"{USERS}/{await _id_of(client, admin, 'ada')}"
    if change == "delete":
        response = await client.delete(url, headers=admin)
    else:
        response = await client.patch(url, json=change, headers=admin)
    assert_rejected(response, 409)
    ada = (await client.get(url, headers=admin)).json()
    assert (ada["is_active"], ada["roles"]) == (True, ["Admin"])


async def test_an_admin_may_go_once_another_admin_exists(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    """With a second active Admin, the first may be demoted."""
    admin = await login_as("ada")
    await _create(client, admin, username="root2", roles=["Admin"])
    url = f"{USERS}/{await _id_of(client, admin, 'ada')}"
    response = await client.patch(url, json={"roles": ["Viewer"]}, headers=admin)
    assert response.status_code == 200, response.text


async def test_changes_are_audited_with_before_and_after(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    """Create, update and delete each leave a row naming actor, target and the change."""
    admin = await login_as("ada")
    user_id = (await _create(client, admin, username="olga", roles=["Viewer"])).json()["id"]
    await client.patch(f"{USERS}/{user_id}", json={"display_name": "Olga"}, headers=admin)
    await client.delete(f"{USERS}/{user_id}", headers=admin)
    rows = [r for r in await audit_entries(client, admin) if r["target_id"] == user_id]
    assert [r["action"] for r in rows] == ["user.delete", "user.update", "user.create"]
    assert {(r["actor"], r["target_type"]) for r in rows} == {("ada", "user")}
    delete, update, create = rows
    assert create["before"] is None and create["after"]["roles"] == ["Viewer"]
    assert (update["before"]["display_name"], update["after"]["display_name"]) == ("", "Olga")
    assert delete["before"]["username"] == "olga" and delete["after"] is None
    assert all("password" not in str(r["after"]) for r in rows)
