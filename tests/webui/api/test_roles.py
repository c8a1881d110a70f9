"""Roles through the API: CRUD, validation, built-in roles and the audit trail."""

from __future__ import annotations

import uuid

import httpx
import pytest

from core.rbac import PERMISSIONS
from tests.webui.api.helpers import assert_rejected, audit_entries
from tests.webui.conftest import LoginAs

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

ROLES = "/api/v1/roles"


async def _role_id(client: httpx.AsyncClient, admin: dict[str, str], name: str) -> str:
    roles = (await client.get(ROLES, headers=admin)).json()
    return next(r["id"] for r in roles if r["name"] == name)


async def test_permission_catalogue_is_listed(client: httpx.AsyncClient, login_as: LoginAs) -> None:
    """GET /permissions gives every permission with its description."""
    listed = (await client.get("/api/v1/permissions", headers=await login_as("ada"))).json()
    assert {p["name"]: p["description"] for p in listed} == PERMISSIONS


async def test_create_read_update_delete(client: httpx.AsyncClient, login_as: LoginAs) -> None:
    """A custom role is created, regranted, renamed and deleted."""
    admin = await login_as("ada")
    body = {"name": "Operators", "permissions": ["devices:read", "commands:send"]}
    created = await client.post(ROLES, json=body, headers=admin)
    assert created.status_code == 201, created.text
    role = created.json()
    assert (role["builtin"], role["permissions"]) == (False, ["commands:send", "devices:read"])
    url = f"{ROLES}/{role['id']}"
    patch = {"name": "Ops", "permissions": ["telemetry:read"]}
    patched = (await client.patch(url, json=patch, headers=admin)).json()
    assert (patched["name"], patched["permissions"]) == ("Ops", ["telemetry:read"])
    assert (await client.get(url, headers=admin)).json()["name"] == "Ops"
    assert (await client.delete(url, headers=admin)).status_code == 204
    assert (await client.get(url, headers=admin)).status_code == 404
    names = [r["name"] for r in (await client.get(ROLES, headers=admin)).json()]
    assert names == ["Admin", "Viewer"]


async def test_a_granted_role_gives_its_permissions_to_users(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    """Giving vic a custom role adds its permissions; deleting the role takes them away."""
    admin = await login_as("ada")
    role = await client.post(
        ROLES, json={"name": "Auditors", "permissions": ["audit:read"]}, headers=admin
    )
    users = (await client.get("/api/v1/users", headers=admin)).json()
    vic = next(u["id"] for u in users if u["username"] == "vic")
    await client.patch(
        f"/api/v1/users/{vic}", json={"roles": ["Viewer", "Auditors"]}, headers=admin
    )
    viewer = await login_as("vic")
    assert (await client.get("/api/v1/audit", headers=viewer)).status_code == 200
    await client.delete(f"{ROLES}/{role.json()['id']}", headers=admin)
    assert (await client.get("/api/v1/audit", headers=viewer)).status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Ops", "permissions": ["devices:fly"]}, "permissions"),
        ({"name": "   "}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": "Ops", "colour": "red"}, "colour"),
        ({"name": "Ops\x00"}, "name"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, login_as: LoginAs, body: dict[str, object], field: str
) -> None:
    """Each mistake is refused with its field and no role appears."""
    admin = await login_as("ada")
    assert_rejected(await client.post(ROLES, json=body, headers=admin), 422, field)
    assert len((await client.get(ROLES, headers=admin)).json()) == 2


@pytest.mark.backends("each")  # a constraint or stored data, per database
async def test_duplicate_names_are_409(client: httpx.AsyncClient, login_as: LoginAs) -> None:
    """A name in use, built-in or custom, on create or rename, is a conflict."""
    admin = await login_as("ada")
    assert_rejected(await client.post(ROLES, json={"name": "Viewer"}, headers=admin), 409, "name")
    ops = (await client.post(ROLES, json={"name": "Ops"}, headers=admin)).json()
    await client.post(ROLES, json={"name": "Crew"}, headers=admin)
    rename = await client.patch(f"{ROLES}/{ops['id']}", json={"name": "Crew"}, headers=admin)
    assert_rejected(rename, 409, "name")


@pytest.mark.parametrize("name", ["Admin", "Viewer"])
async def test_builtin_roles_cannot_be_edited_or_deleted(
    client: httpx.AsyncClient, login_as: LoginAs, name: str
) -> None:
    """Both are 403 with a reason, and the role keeps its permissions."""
    admin = await login_as("ada")
    url = f"{ROLES}/{await _role_id(client, admin, name)}"
    before = (await client.get(url, headers=admin)).json()
    assert_rejected(await client.patch(url, json={"permissions": []}, headers=admin), 403)
    assert_rejected(await client.delete(url, headers=admin), 403)
    assert (await client.get(url, headers=admin)).json() == before


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_unknown_and_malformed_ids(
    client: httpx.AsyncClient, login_as: LoginAs, method: str
) -> None:
    """An unknown id is 404; a malformed one is 422 naming role_id."""
    admin = await login_as("ada")
    body = {"description": "x"} if method == "PATCH" else None
    unknown = await client.request(method, f"{ROLES}/{uuid.uuid4()}", json=body, headers=admin)
    assert_rejected(unknown, 404)
    malformed = await client.request(method, f"{ROLES}/12345", json=body, headers=admin)
    assert_rejected(malformed, 422, "role_id")


async def test_changes_are_audited_with_before_and_after(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    """Create, update and delete each leave a row with actor, target and the change."""
    admin = await login_as("ada")
    body = {"name": "Ops", "permissions": ["devices:read"]}
    role_id = (await client.post(ROLES, json=body, headers=admin)).json()["id"]
    patch = {"permissions": ["devices:read", "devices:write"]}
    await client.patch(f"{ROLES}/{role_id}", json=patch, headers=admin)
    await client.delete(f"{ROLES}/{role_id}", headers=admin)
    rows = [r for r in await audit_entries(client, admin) if r["target_id"] == role_id]
    assert [r["action"] for r in rows] == ["role.delete", "role.update", "role.create"]
    assert {(r["actor"], r["target_type"]) for r in rows} == {("ada", "role")}
    delete, update, create = rows
    assert create["after"]["permissions"] == ["devices:read"]
    assert update["before"]["permissions"] == ["devices:read"]
    assert update["after"]["permissions"] == ["devices:read", "devices:write"]
    assert delete["before"]["name"] == "Ops" and delete["after"] is None
