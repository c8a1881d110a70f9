"""Input that once made the API answer 500 now gets a 422 naming the field and the reason.

Schemathesis found these (tests/webui/api/test_schemathesis.py keeps looking); they stay
here by name because random generation seldom hits them again: Hypothesis' text never holds
a lone surrogate, and an unbounded integer seldom passes 2**63.
"""

from __future__ import annotations

import httpx
import pytest

from tests.webui.api.helpers import assert_rejected
from tests.webui.conftest import LoginAs

pytestmark = pytest.mark.backends("one")

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("offset", [2**63, 10**30])
async def test_an_audit_offset_past_64_bits_is_refused(
    client: httpx.AsyncClient, login_as: LoginAs, offset: int
) -> None:
    admin = await login_as("ada")
    response = await client.get("/api/v1/audit", params={"offset": offset}, headers=admin)
    assert_rejected(response, 422, "offset")


async def test_the_largest_audit_offset_is_an_empty_page(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin = await login_as("ada")
    response = await client.get("/api/v1/audit", params={"offset": 2**63 - 1}, headers=admin)
    assert response.status_code == 200, response.text
    assert response.json() == []


async def test_a_lone_surrogate_at_sign_in_is_refused(client: httpx.AsyncClient) -> None:
    """Anonymous, and the answer, which quotes the input, is still valid UTF-8 JSON."""
    body = b'{"username": "\\ud800", "password": "x"}'  # JSON's escape: no UTF-8 can say it
    response = await client.post("/api/v1/auth/login", content=body, headers=JSON)
    assert_rejected(response, 422, "username")
    assert "surrogate" in response.json()["detail"][0]["msg"]
    response.content.decode("utf-8")  # strict: raises if the answer is not UTF-8


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/v1/users", '{"username": "eve", "password": "long-enough-1", '
         '"display_name": "\\udfff"}', "display_name"),
        ("POST", "/api/v1/roles", '{"name": "Ops", "permissions": ["\\ud800"]}', "permissions"),
        ("POST", "/api/v1/users", '{"username": "eve", "password": "long-enough-1", '
         '"roles": ["Viewer\\udc00"]}', "roles"),
        ("POST", "/api/v1/devices", '{"id": "press-1", "description": "a\\udc00b"}',
         "description"),
    ],
)  # fmt: skip
async def test_a_lone_surrogate_anywhere_is_refused(
    client: httpx.AsyncClient,
    login_as: LoginAs,
    method: str,
    path: str,
    body: str,
    field: str,
) -> None:
    admin = await login_as("ada")
    response = await client.request(method, path, content=body.encode(), headers=admin | JSON)
    assert_rejected(response, 422, field)
    assert "surrogate" in response.json()["detail"][0]["msg"]
    listing = await client.get(path, headers=admin)
    assert "eve" not in listing.text and "Ops" not in listing.text  # nothing was made


async def test_a_lone_surrogate_in_a_configuration_is_refused(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin = await login_as("ada")
    created = await client.post("/api/v1/devices", json={"id": "press-1"}, headers=admin)
    assert created.status_code == 201, created.text
    config = "/api/v1/devices/press-1/config"
    before = (await client.get(config, headers=admin)).json()
    body = b'{"units": {"\\udc00": "V"}}'
    response = await client.patch(config, content=body, headers=admin | JSON | {"If-Match": "*"})
    assert_rejected(response, 422)
    assert (await client.get(config, headers=admin)).json() == before


@pytest.mark.parametrize("export", ["history", "telemetry.csv"])
@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        ("0001-01-01T00:00:00+01:00", "2025-01-01T00:00:00Z", "start"),  # year 0 in UTC
        ("2025-01-01T00:00:00Z", "9999-12-31T23:30:00-01:00", "end"),  # year 10000 in UTC
    ],
)
async def test_a_moment_utc_cannot_hold_is_refused(
    client: httpx.AsyncClient, login_as: LoginAs, export: str, start: str, end: str, field: str
) -> None:
    admin = await login_as("ada")
    await client.post("/api/v1/devices", json={"id": "press-1"}, headers=admin)
    params = {"start": start, "end": end, "channel": "temp"}
    response = await client.get(f"/api/v1/devices/press-1/{export}", params=params, headers=admin)
    assert_rejected(response, 422, field)
    assert "UTC" in response.json()["detail"][0]["msg"]
