"""Nobody grants what they do not hold, and only an Admin touches an Admin (403 with a reason)."""

from __future__ import annotations

import httpx
import pytest

from core.rbac import PERMISSIONS
from tests.webui.api.helpers import assert_rejected
from tests.webui.conftest import ADMIN_PASSWORD, LoginAs

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

USERS, ROLES, LOGIN = "/api/v1/users", "/api/v1/roles", "/api/v1/auth/login"
PASSWORD = "long-enough-1"


async def _role(client: httpx.AsyncClient, admin: dict[str, str], name: str, *perms: str) -> str:
    created = await client.post(
        ROLES, json={"name": name, "permissions": list(perms)}, headers=admin
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _account(
    client: httpx.AsyncClient, admin: dict[str, str], username: str, *roles: str
) -> tuple[str, dict[str, str]]:
    """A new user with ``roles``: its id and its Authorization header."""
    body = {"username": username, "password": PASSWORD, "roles": list(roles)}
    created = await client.post(USERS, json=body, headers=admin)
    assert created.status_code == 201, created.text
    login = await client.post(LOGIN, json={"username": username, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return created.json()["id"], {"Authorization": f"Bearer {login.json()['access_token']}"}


async def _id_of(client: httpx.AsyncClient, admin: dict[str, str], username: str) -> str:
    listed = (await client.get(USERS, headers=admin)).json()
    return str(next(u["id"] for u in listed if u["username"] == username))


@pytest.fixture
async def admin(login_as: LoginAs) -> dict[str, str]:
    """ada, the Admin."""
    return await login_as("ada")


@pytest.fixture
async def user_manager(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """'uma', whose only permission is users:manage."""
    await _role(client, admin, "User managers", "users:manage")
    return await _account(client, admin, "uma", "User managers")


@pytest.fixture
async def role_manager(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """'rom', whose only permission is roles:manage, through the role 'Role managers'."""
    await _role(client, admin, "Role managers", "roles:manage")
    return await _account(client, admin, "rom", "Role managers")


async def test_a_user_manager_cannot_make_itself_admin(
    client: httpx.AsyncClient, admin: dict[str, str], user_manager: tuple[str, dict[str, str]]
) -> None:
    """Giving oneself the Admin role is refused, and the roles stay as they were."""
    uma, headers = user_manager
    response = await client.patch(f"{USERS}/{uma}", json={"roles": ["Admin"]}, headers=headers)
    assert_rejected(response, 403)
    assert "Admin" in response.json()["detail"]
    assert (await client.get(f"{USERS}/{uma}", headers=admin)).json()["roles"] == ["User managers"]


async def test_a_user_manager_cannot_create_an_admin(
    client: httpx.AsyncClient, admin: dict[str, str], user_manager: tuple[str, dict[str, str]]
) -> None:
    """Creating a user with the Admin role is refused and nobody is created."""
    _, headers = user_manager
    body = {"username": "mallory", "password": PASSWORD, "roles": ["Admin"]}
    assert_rejected(await client.post(USERS, json=body, headers=headers), 403)
    listed = (await client.get(USERS, headers=admin)).json()
    assert "mallory" not in [u["username"] for u in listed]


async def test_a_user_manager_cannot_reset_an_admins_password(
    client: httpx.AsyncClient, admin: dict[str, str], user_manager: tuple[str, dict[str, str]]
) -> None:
    """Resetting ada's password is refused and her password still works."""
    _, headers = user_manager
    ada = await _id_of(client, admin, "ada")
    response = await client.patch(
        f"{USERS}/{ada}", json={"password": "taken-over-1"}, headers=headers
    )
    assert_rejected(response, 403)
    login = await client.post(LOGIN, json={"username": "ada", "password": ADMIN_PASSWORD})
    assert login.status_code == 200, login.text


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("PATCH", {"is_active": False}),
        ("PATCH", {"display_name": "Not Ada"}),
        ("PATCH", {"roles": ["Viewer"]}),
        ("DELETE", None),
    ],
)
async def test_a_user_manager_cannot_touch_an_admin_account(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    user_manager: tuple[str, dict[str, str]],
    method: str,
    body: dict[str, object] | None,
) -> None:
    """Disabling, renaming, re-roling or deleting an Admin is an Admin's call alone."""
    _, headers = user_manager
    ada = await _id_of(client, admin, "ada")
    response = await client.request(method, f"{USERS}/{ada}", json=body, headers=headers)
    assert_rejected(response, 403)
    after = (await client.get(f"{USERS}/{ada}", headers=admin)).json()
    assert (after["is_active"], after["display_name"], after["roles"]) == (True, "", ["Admin"])


async def test_a_user_manager_cannot_grant_a_role_it_does_not_hold(
    client: httpx.AsyncClient, admin: dict[str, str], user_manager: tuple[str, dict[str, str]]
) -> None:
    """A role with a permission uma lacks cannot be given, to uma or to anyone else."""
    uma, headers = user_manager
    await _role(client, admin, "Operators", "devices:write", "users:manage")
    response = await client.patch(f"{USERS}/{uma}", json={"roles": ["Operators"]}, headers=headers)
    assert_rejected(response, 403)
    assert "devices:write" in response.json()["detail"]
    body = {"username": "olga", "password": PASSWORD, "roles": ["Operators"]}
    assert_rejected(await client.post(USERS, json=body, headers=headers), 403)


async def test_a_user_manager_cannot_take_over_an_account_with_more_permissions(
    client: httpx.AsyncClient, admin: dict[str, str], user_manager: tuple[str, dict[str, str]]
) -> None:
    """Resetting the password of someone holding what uma lacks would hand uma their rights."""
    _, headers = user_manager
    vic = await _id_of(client, admin, "vic")  # a Viewer: devices:read, telemetry:read
    response = await client.patch(
        f"{USERS}/{vic}", json={"password": "taken-over-1"}, headers=headers
    )
    assert_rejected(response, 403)
    assert "devices:read" in response.json()["detail"]


async def test_a_user_manager_manages_what_it_holds(
    client: httpx.AsyncClient, admin: dict[str, str], user_manager: tuple[str, dict[str, str]]
) -> None:
    """Within its own permissions uma creates, re-roles, resets and deletes accounts."""
    _, headers = user_manager
    body = {"username": "olga", "password": PASSWORD, "roles": ["User managers"]}
    created = await client.post(USERS, json=body, headers=headers)
    assert created.status_code == 201, created.text
    url = f"{USERS}/{created.json()['id']}"
    patched = await client.patch(
        url, json={"password": "another-pass-1", "roles": []}, headers=headers
    )
    assert patched.status_code == 200, patched.text
    assert (await client.delete(url, headers=headers)).status_code == 204


async def test_a_role_manager_cannot_grant_its_own_role_every_permission(
    client: httpx.AsyncClient, admin: dict[str, str], role_manager: tuple[str, dict[str, str]]
) -> None:
    """Adding permissions rom lacks to rom's own role is refused; the role is unchanged."""
    _, headers = role_manager
    roles = (await client.get(ROLES, headers=admin)).json()
    mine = next(r["id"] for r in roles if r["name"] == "Role managers")
    response = await client.patch(
        f"{ROLES}/{mine}", json={"permissions": sorted(PERMISSIONS)}, headers=headers
    )
    assert_rejected(response, 403)
    assert "users:manage" in response.json()["detail"]
    after = (await client.get(f"{ROLES}/{mine}", headers=admin)).json()
    assert after["permissions"] == ["roles:manage"]


async def test_a_role_manager_cannot_create_a_role_with_what_it_lacks(
    client: httpx.AsyncClient, role_manager: tuple[str, dict[str, str]]
) -> None:
    """A new role may carry only permissions its creator holds."""
    _, headers = role_manager
    body = {"name": "Mighty", "permissions": ["roles:manage", "devices:write"]}
    assert_rejected(await client.post(ROLES, json=body, headers=headers), 403)
    body = {"name": "Modest", "permissions": ["roles:manage"]}
    assert (await client.post(ROLES, json=body, headers=headers)).status_code == 201


async def test_an_admin_still_does_everything(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    """An Admin creates another Admin and grants any permission."""
    body = {"username": "adele", "password": PASSWORD, "roles": ["Admin"]}
    assert (await client.post(USERS, json=body, headers=admin)).status_code == 201
    role = {"name": "All", "permissions": sorted(PERMISSIONS)}
    assert (await client.post(ROLES, json=role, headers=admin)).status_code == 201
