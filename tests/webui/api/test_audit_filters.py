"""GET /api/v1/audit narrowed and paged, and /api/v1/audit.csv: what a script reading gets."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.webui.api.helpers import assert_rejected, audit_entries
from tests.webui.conftest import LoginAs

pytestmark = pytest.mark.backends("one")


async def _seed(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """A device made, renamed and its credentials rotated; a role made."""
    made = await client.post(
        "/api/v1/devices", json={"id": "press-01", "name": "Spindle press"}, headers=admin
    )
    assert made.status_code == 201, made.text
    renamed = await client.patch(
        "/api/v1/devices/press-01", json={"name": "Spindle press 7"}, headers=admin
    )
    assert renamed.status_code == 200, renamed.text
    rotated = await client.post("/api/v1/devices/press-01/credentials", headers=admin)
    assert rotated.status_code == 200, rotated.text
    role = await client.post(
        "/api/v1/roles",
        json={"name": "Night shift", "permissions": ["devices:read"]},
        headers=admin,
    )
    assert role.status_code == 201, role.text


async def test_filters_narrow_and_page_in_the_database(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin = await login_as("ada")
    await _seed(client, admin)

    family = await client.get("/api/v1/audit", params={"action": "device"}, headers=admin)
    assert family.status_code == 200, family.text
    actions = [r["action"] for r in family.json()]
    assert actions == ["device.rotate_credentials", "device.update", "device.create"]
    assert family.headers["X-Total-Count"] == "3"

    first = await client.get(
        "/api/v1/audit", params={"action": "device", "limit": 1, "offset": 1}, headers=admin
    )
    assert [r["action"] for r in first.json()] == ["device.update"]
    assert first.headers["X-Total-Count"] == "3"  # the count is of all that match, not the page

    exact = await client.get("/api/v1/audit", params={"action": "device.update"}, headers=admin)
    assert [r["action"] for r in exact.json()] == ["device.update"]

    by_target = await client.get(
        "/api/v1/audit", params={"target_type": "role", "actor": "ada"}, headers=admin
    )
    assert [r["action"] for r in by_target.json()] == ["role.create"]
    nobody = await client.get("/api/v1/audit", params={"actor": "vic"}, headers=admin)
    assert nobody.json() == []
    assert nobody.headers["X-Total-Count"] == "0"


async def test_search_finds_targets_by_name_and_times_bound_the_range(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin = await login_as("ada")
    await _seed(client, admin)

    # Rotating credentials records no fields: only the device's name links it to "spindle".
    found = await client.get("/api/v1/audit", params={"q": "SPINDLE"}, headers=admin)
    assert {r["action"] for r in found.json()} == {
        "device.create",
        "device.update",
        "device.rotate_credentials",
    }
    wildcard = await client.get("/api/v1/audit", params={"q": "%"}, headers=admin)
    assert wildcard.json() == []  # taken literally, not as "anything"

    now = datetime.now(UTC)
    later = await client.get(
        "/api/v1/audit", params={"since": (now + timedelta(minutes=1)).isoformat()}, headers=admin
    )
    assert later.json() == []
    window = await client.get(
        "/api/v1/audit",
        params={
            "since": (now - timedelta(minutes=5)).isoformat(),
            "until": (now + timedelta(minutes=1)).isoformat(),
            "action": "role",
        },
        headers=admin,
    )
    assert [r["action"] for r in window.json()] == ["role.create"]

    naive = await client.get("/api/v1/audit", params={"since": "2026-11-30T10:00"}, headers=admin)
    assert_rejected(naive, 422, "since")
    backwards = await client.get(
        "/api/v1/audit",
        params={"since": now.isoformat(), "until": (now - timedelta(hours=1)).isoformat()},
        headers=admin,
    )
    assert_rejected(backwards, 422, "until")


async def test_csv_is_the_filtered_set_in_utc_with_names_and_words(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin = await login_as("ada")
    await _seed(client, admin)

    response = await client.get("/api/v1/audit.csv", params={"action": "device"}, headers=admin)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["action"] for r in rows] == [
        "device.rotate_credentials",
        "device.update",
        "device.create",
    ]
    for row in rows:
        at = datetime.fromisoformat(row["at"])
        assert at.utcoffset() == timedelta(0), row["at"]
        assert row["target_name"] == "Spindle press 7 (press-01)"
        assert row["actor_name"] == "ada"
    assert rows[1]["change"] == "name: Spindle press → Spindle press 7"
    assert "enabled: yes" in rows[2]["change"]
    assert "description: (empty)" in rows[2]["change"]

    exports = await audit_entries(client, admin, action="audit.export")
    assert [e["after"] for e in exports] == [{"action": "device"}]
    # An export holds the log as it stood when asked: the earlier export, not its own entry.
    again = await client.get("/api/v1/audit.csv", params={"q": "audit.export"}, headers=admin)
    assert [r["change"] for r in csv.DictReader(io.StringIO(again.text))] == ["action: device"]


async def test_reading_the_log_needs_audit_read_at_the_moment_of_asking(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    viewer = await login_as("vic")
    for path in ("/api/v1/audit", "/api/v1/audit.csv"):
        assert_rejected(await client.get(path, headers=viewer), 403)
    admin = await login_as("ada")
    await client.post("/api/v1/auth/logout", headers=admin)
    assert (await client.get("/api/v1/audit.csv", headers=admin)).status_code == 401


@pytest.mark.parametrize("field", ["actor", "action", "target_type", "target_id", "q"])
async def test_a_filter_the_database_cannot_hold_is_a_422_naming_it(
    client: httpx.AsyncClient, login_as: LoginAs, field: str
) -> None:
    """NUL in any text filter (schemathesis found a 500 on PostgreSQL), on the list and CSV."""
    admin = await login_as("ada")
    for path in ("/api/v1/audit", "/api/v1/audit.csv"):
        refused = await client.get(path, params={field: "press\x0001"}, headers=admin)
        assert_rejected(refused, 422, field)
