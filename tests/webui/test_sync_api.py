"""/api/v1/sync: each station's sync state for readers of devices, the conflict log for
managers of users, and never a password hash to anyone."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from core.db.engine import Database
from tests.webui.api.helpers import assert_rejected
from tests.webui.conftest import LoginAs
from tests.webui.sync_data import BEHIND, Seeded, seed

# What a caller sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

STATIONS = "/api/v1/sync/stations"
CONFLICTS = "/api/v1/sync/conflicts"


@pytest.fixture
async def seeded(database: Database) -> Seeded:
    """The fleet and conflicts of tests/webui/sync_data.py."""
    return await seed(database)


async def test_anonymous_callers_get_401_and_a_viewer_no_conflicts(
    client: httpx.AsyncClient, login_as: LoginAs, seeded: Seeded
) -> None:
    for path in (STATIONS, CONFLICTS):
        assert_rejected(await client.get(path), 401)
    viewer = await login_as("vic")
    assert (await client.get(STATIONS, headers=viewer)).status_code == 200
    refused = await client.get(CONFLICTS, headers=viewer)
    assert_rejected(refused, 403)
    assert "users:manage" in refused.json()["detail"]
    assert "olga" not in refused.text


async def test_every_station_with_its_cursor_lag_and_last_sync(
    client: httpx.AsyncClient, login_as: LoginAs, seeded: Seeded
) -> None:
    response = await client.get(STATIONS, headers=await login_as("vic"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["head"] == seeded.head
    by_id = {s["device_id"]: s for s in body["stations"]}
    assert list(by_id) == ["kiln-3", "lathe-1", "press-07"]
    press = by_id["press-07"]
    assert press == {
        "device_id": "press-07",
        "cursor": seeded.head - BEHIND,
        "lag": BEHIND,
        "last_sync_at": press["last_sync_at"],
        "pending_up": 2,
        "accepted": 5,
        "refused": 1,
        "conflicts": 2,
    }
    synced = datetime.fromisoformat(press["last_sync_at"])
    assert synced.utcoffset() is not None and synced.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert synced == seeded.synced_at
    assert (by_id["lathe-1"]["lag"], by_id["lathe-1"]["pending_up"]) == (0, 0)
    never = by_id["kiln-3"]
    assert (never["last_sync_at"], never["cursor"], never["lag"]) == (None, 0, seeded.head)


async def test_conflicts_newest_first_in_words_with_who_where_and_when(
    client: httpx.AsyncClient, login_as: LoginAs, seeded: Seeded
) -> None:
    response = await client.get(CONFLICTS, headers=await login_as("ada"))
    assert response.status_code == 200, response.text
    found = response.json()
    assert [(c["subject"], c["field_label"]) for c in found] == [
        ("Configuration of press-07", "sampling interval"),
        ("olga's role Admin", "role given"),
        ("User olga", "password"),
        ("User olga", "display name"),
    ]
    name = found[3]
    assert (name["entity"], name["key"], name["field"]) == ("user", seeded.olga_id, "display_name")
    assert name["device_id"] == "press-07"
    kept, lost = name["kept"], name["lost"]
    assert (kept["value"], kept["origin"], kept["actor"]) == ("Olga K.", "server", "ada")
    assert (lost["value"], lost["origin"], lost["actor"]) == ("Olga", "press-07", "olga")
    assert datetime.fromisoformat(kept["at"]) == seeded.kept_name_at
    assert datetime.fromisoformat(lost["at"]) == seeded.lost_name_at
    assert datetime.fromisoformat(lost["at"]).tzinfo is not None
    link = found[1]
    assert (link["kept"]["shown"], link["lost"]["shown"]) == ("given", "taken away")
    assert (link["lost"]["origin"], link["lost"]["actor"]) == ("lathe-1", "ada")
    setting = found[0]
    assert (setting["kept"]["value"], setting["lost"]["shown"]) == (2.5, "1 s")
    assert setting["device_id"] is None
    assert datetime.fromisoformat(found[0]["at"]) <= datetime.now(UTC)


async def test_a_password_hash_is_never_shown(
    client: httpx.AsyncClient, login_as: LoginAs, seeded: Seeded
) -> None:
    response = await client.get(CONFLICTS, headers=await login_as("ada"))
    assert response.status_code == 200, response.text
    for password_hash in seeded.hashes:
        assert password_hash not in response.text
        assert password_hash.rsplit("$", 1)[-1] not in response.text  # not even the digest
    assert "$argon2" not in response.text
    password = next(c for c in response.json() if c["field"] == "password_hash")
    for side in (password["kept"], password["lost"]):
        assert side["value"] == side["shown"] == "password changed"


async def test_conflicts_of_one_station_and_a_limit(
    client: httpx.AsyncClient, login_as: LoginAs, seeded: Seeded
) -> None:
    admin = await login_as("ada")
    press = await client.get(CONFLICTS, params={"device_id": "press-07"}, headers=admin)
    assert [c["field"] for c in press.json()] == ["password_hash", "display_name"]
    lathe = await client.get(CONFLICTS, params={"device_id": "lathe-1"}, headers=admin)
    assert [c["entity"] for c in lathe.json()] == ["user_role"]
    none = await client.get(CONFLICTS, params={"device_id": "kiln-3"}, headers=admin)
    assert none.json() == []
    newest = await client.get(CONFLICTS, params={"limit": 1}, headers=admin)
    assert [c["entity"] for c in newest.json()] == ["device_config"]


@pytest.mark.parametrize(
    ("params", "field"),
    [({"device_id": "no/such"}, "device_id"), ({"limit": 0}, "limit"), ({"limit": 5000}, "limit")],
)
async def test_a_bad_question_is_refused_naming_it(
    client: httpx.AsyncClient,
    login_as: LoginAs,
    seeded: Seeded,
    params: dict[str, str | int],
    field: str,
) -> None:
    response = await client.get(CONFLICTS, params=params, headers=await login_as("ada"))
    assert_rejected(response, 422, field)
