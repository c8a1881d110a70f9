"""Every /api/v1 route, the permission it needs, and what each kind of caller gets."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from nicegui import core

from core.rbac import BUILTIN_ROLES, VIEWER
from tests.webui.conftest import LoginAs

PUBLIC, SIGNED_IN = "public", "signed-in"
# (method, path) → what a caller needs. A new route fails test_table_covers_every_route.
ROUTES: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/auth/login"): PUBLIC,
    ("POST", "/api/v1/auth/refresh"): PUBLIC,
    ("GET", "/api/v1/health"): PUBLIC,
    ("GET", "/api/v1/health/details"): "devices:write",
    ("POST", "/api/v1/auth/logout"): SIGNED_IN,
    ("GET", "/api/v1/auth/me"): SIGNED_IN,
    ("GET", "/api/v1/users"): "users:manage",
    ("POST", "/api/v1/users"): "users:manage",
    ("GET", "/api/v1/users/{user_id}"): "users:manage",
    ("PATCH", "/api/v1/users/{user_id}"): "users:manage",
    ("DELETE", "/api/v1/users/{user_id}"): "users:manage",
    ("GET", "/api/v1/permissions"): "roles:manage",
    ("GET", "/api/v1/roles"): "roles:manage",
    ("POST", "/api/v1/roles"): "roles:manage",
    ("GET", "/api/v1/roles/{role_id}"): "roles:manage",
    ("PATCH", "/api/v1/roles/{role_id}"): "roles:manage",
    ("DELETE", "/api/v1/roles/{role_id}"): "roles:manage",
    ("GET", "/api/v1/devices"): "devices:read",
    ("POST", "/api/v1/devices"): "devices:write",
    ("GET", "/api/v1/devices/{device_id}"): "devices:read",
    ("GET", "/api/v1/devices/{device_id}/gaps"): "devices:read",
    ("GET", "/api/v1/devices/{device_id}/config"): "devices:read",
    ("PATCH", "/api/v1/devices/{device_id}/config"): "config:write",
    ("GET", "/api/v1/devices/{device_id}/config/history"): "devices:read",
    ("GET", "/api/v1/devices/{device_id}/config/history/{version}"): "devices:read",
    ("POST", "/api/v1/devices/{device_id}/config/rollback"): "config:write",
    ("GET", "/api/v1/devices/{device_id}/channels"): "telemetry:read",
    ("GET", "/api/v1/devices/{device_id}/history"): "telemetry:read",
    ("GET", "/api/v1/devices/{device_id}/telemetry.csv"): "reports:read",
    ("GET", "/api/v1/telemetry/quarantine"): "telemetry:quarantine",
    ("GET", "/api/v1/telemetry/quarantine/{device_id}/{stream}/{seq}"): "telemetry:quarantine",
    ("PATCH", "/api/v1/devices/{device_id}"): "devices:write",
    ("POST", "/api/v1/devices/{device_id}/disable"): "devices:write",
    ("POST", "/api/v1/devices/{device_id}/credentials"): "devices:write",
    ("POST", "/api/v1/devices/{device_id}/commands"): "commands:send",
    ("GET", "/api/v1/devices/{device_id}/commands"): "devices:read",
    ("GET", "/api/v1/commands"): "devices:read",
    ("GET", "/api/v1/commands/{command_id}"): "devices:read",
    ("POST", "/api/v1/commands/{command_id}/cancel"): "commands:send",
    ("POST", "/api/v1/configs/bulk"): "commands:send",  # and config:write
    ("GET", "/api/v1/configs/bulk/{batch_id}"): "devices:read",
    ("GET", "/api/v1/sync/stations"): "devices:read",
    ("GET", "/api/v1/sync/conflicts"): "users:manage",
    ("GET", "/api/v1/audit"): "audit:read",
    ("GET", "/api/v1/audit.csv"): "audit:read",
    ("GET", "/api/v1/audit/verify"): "audit:read",
    ("GET", "/api/v1/reports/offline-events"): "reports:read",  # and devices:read
    ("GET", "/api/v1/reports/availability"): "reports:read",  # and devices:read
    ("GET", "/api/v1/reports/config-changes"): "reports:read",  # and devices:read
    ("GET", "/api/v1/reports/audit"): "reports:read",  # and audit:read
}
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/auth/login"): {"username": "ada", "password": "admin-password-1"},
    ("POST", "/api/v1/users"): {"username": "newcomer", "password": "long-enough-1"},
    ("PATCH", "/api/v1/users/{user_id}"): {"display_name": "Renamed"},
    ("POST", "/api/v1/roles"): {"name": "Operators", "permissions": ["devices:read"]},
    ("PATCH", "/api/v1/roles/{role_id}"): {"description": "changed"},
    ("POST", "/api/v1/devices"): {"id": "press-99"},
    ("PATCH", "/api/v1/devices/{device_id}"): {"name": "Press"},
    ("PATCH", "/api/v1/devices/{device_id}/config"): {"interval_s": 2},
    ("POST", "/api/v1/devices/{device_id}/config/rollback"): {"version": 1},
    ("POST", "/api/v1/configs/bulk"): {"changes": {"interval_s": 2}, "selector": {}},
    ("POST", "/api/v1/devices/{device_id}/commands"): {"kind": "Ping"},
}
VIEWER_PERMISSIONS = BUILTIN_ROLES[VIEWER][1]
LOGOUT = ("POST", "/api/v1/auth/logout")


async def test_table_covers_every_route(client: httpx.AsyncClient) -> None:
    """The table names exactly the routes the running app serves under /api/v1."""
    # FastAPI 0.165 nests included routers in a private route type, so read the routes
    # from the app's OpenAPI description, which lists every one of them.
    paths = core.app.openapi()["paths"]
    served = {
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/api/v1")
        for method in operations
    }
    assert served == set(ROUTES)


async def _call(
    client: httpx.AsyncClient, route: tuple[str, str], ids: dict[str, str], auth: dict[str, str]
) -> httpx.Response:
    method, path = route
    body = BODIES.get(route)
    if route == ("POST", "/api/v1/auth/refresh"):
        login = await client.post("/api/v1/auth/login", json=BODIES[("POST", "/api/v1/auth/login")])
        body = {"refresh_token": login.json()["refresh_token"]}
    return await client.request(method, path.format(**ids), json=body, headers=auth)


async def _targets(client: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, str]:
    """Existing ids for the path parameters: a user, a custom role, a device, a command."""
    user = await client.post(
        "/api/v1/users", json={"username": "target", "password": "long-enough-1"}, headers=admin
    )
    role = await client.post("/api/v1/roles", json={"name": "Target"}, headers=admin)
    device = await client.post("/api/v1/devices", json={"id": "press-01"}, headers=admin)
    command = await client.post(
        "/api/v1/devices/press-01/commands", json={"kind": "Ping"}, headers=admin
    )
    assert {user.status_code, role.status_code, device.status_code, command.status_code} == {201}
    ids = {"user_id": user.json()["id"], "role_id": role.json()["id"], "device_id": "press-01"}
    batch = {"batch_id": str(uuid.uuid4())}  # none: a 404 tells whether the caller may read
    held = {"stream": "s1", "seq": "1"}  # no such quarantined sample: a 404 tells the same
    return ids | {"version": "1", "command_id": command.json()["id"]} | batch | held


async def _statuses(
    client: httpx.AsyncClient, login_as: LoginAs, username: str | None
) -> dict[tuple[str, str], int]:
    """The status of every route called by ``username`` (None: anonymous)."""
    ids = await _targets(client, await login_as("ada"))
    own = await login_as(username) if username else {}
    statuses = {}
    for route in ROUTES:
        # Logout gets a throwaway sign-in, so the calls after it keep a live token.
        auth = await login_as(username) if username and route == LOGOUT else own
        statuses[route] = (await _call(client, route, ids, auth)).status_code
    return statuses


def _expected_ok(status: int) -> bool:
    return status not in (401, 403) and status < 500


async def test_anonymous_callers_get_401_except_on_public_routes(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    """Without a token only login, refresh and health answer."""
    statuses = await _statuses(client, login_as, None)
    wrong = {
        route: status
        for route, status in statuses.items()
        if (ROUTES[route] == PUBLIC) != _expected_ok(status)
        or (ROUTES[route] != PUBLIC and status != 401)
    }
    assert wrong == {}


async def test_viewer_is_refused_what_viewer_does_not_hold(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    """403 exactly where the route needs a permission the Viewer role lacks."""
    statuses = await _statuses(client, login_as, "vic")
    allowed = {PUBLIC, SIGNED_IN} | VIEWER_PERMISSIONS
    wrong = {
        route: status
        for route, status in statuses.items()
        if (ROUTES[route] in allowed) != _expected_ok(status)
        or (ROUTES[route] not in allowed and status != 403)
    }
    assert wrong == {}


async def test_admin_is_never_refused(client: httpx.AsyncClient, login_as: LoginAs) -> None:
    """An Admin passes every permission check, and no call fails with a 5xx."""
    statuses = await _statuses(client, login_as, "ada")
    assert {route: s for route, s in statuses.items() if not _expected_ok(s)} == {}
