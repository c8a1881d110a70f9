"""Devices through the API: registration, credentials shown once, edits, disabling, audit."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sqlalchemy import select

from core.db.engine import Database
from core.db.models import Device
from core.passwords import verify_mosquitto_hash
from core.protocol.telemetry import Batch, Gap, Sample
from core.services.telemetry import store
from tests.webui.api.helpers import assert_rejected, audit_entries
from tests.webui.conftest import LoginAs

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

DEVICES = "/api/v1/devices"


async def _stored_hash(database: Database, device_id: str) -> str:
    async with database.session() as session:
        found = await session.scalar(
            select(Device.mqtt_password_hash).where(Device.id == device_id)
        )
    assert found is not None
    return found


async def test_create_returns_credentials_once(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database
) -> None:
    """The password comes back once, is stored as a $7$ hash that verifies, never shown again."""
    admin = await login_as("ada")
    body = {"id": "press-07", "name": "Press 7", "description": "hall B"}
    created = await client.post(DEVICES, json=body, headers=admin)
    assert created.status_code == 201, created.text
    answer = created.json()
    password = answer["mqtt_password"]
    assert answer["mqtt_username"] == "press-07" and len(password) >= 24
    assert answer["device"]["name"] == "Press 7" and answer["device"]["enabled"] is True
    stored = await _stored_hash(database, "press-07")
    assert stored.startswith("$7$") and verify_mosquitto_hash(password, stored)
    assert not verify_mosquitto_hash(password + "x", stored)
    shown = (await client.get(f"{DEVICES}/press-07", headers=admin)).text
    listed = (await client.get(DEVICES, headers=admin)).text
    assert password not in shown + listed and "$7$" not in shown + listed


async def test_rotating_credentials_replaces_the_password(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database
) -> None:
    """After rotation only the new password verifies."""
    admin = await login_as("ada")
    old = (await client.post(DEVICES, json={"id": "press-07"}, headers=admin)).json()
    new = (await client.post(f"{DEVICES}/press-07/credentials", headers=admin)).json()
    stored = await _stored_hash(database, "press-07")
    assert verify_mosquitto_hash(new["mqtt_password"], stored)
    assert not verify_mosquitto_hash(old["mqtt_password"], stored)


async def test_name_defaults_to_id_and_edits_stick(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    """A device without a name is called by its id; PATCH changes only what it names."""
    admin = await login_as("ada")
    created = (await client.post(DEVICES, json={"id": "lathe_2"}, headers=admin)).json()
    assert created["device"]["name"] == "lathe_2"
    patched = await client.patch(f"{DEVICES}/lathe_2", json={"description": "new"}, headers=admin)
    assert (patched.json()["name"], patched.json()["description"]) == ("lathe_2", "new")
    listed = (await client.get(DEVICES, headers=await login_as("vic"))).json()
    assert [(d["id"], d["description"]) for d in listed] == [("lathe_2", "new")]


@pytest.mark.parametrize("how", ["patch", "post"])
async def test_disable_by_patch_or_post(
    client: httpx.AsyncClient, login_as: LoginAs, how: str
) -> None:
    """Both ways leave the device disabled, with a device.disable audit row."""
    admin = await login_as("ada")
    await client.post(DEVICES, json={"id": "press-07"}, headers=admin)
    if how == "patch":
        response = await client.patch(f"{DEVICES}/press-07", json={"enabled": False}, headers=admin)
    else:
        response = await client.post(f"{DEVICES}/press-07/disable", headers=admin)
    assert response.status_code == 200 and response.json()["enabled"] is False
    assert (await client.get(f"{DEVICES}/press-07", headers=admin)).json()["enabled"] is False
    [row] = await audit_entries(client, admin, action="device.disable")
    assert (row["before"]["enabled"], row["after"]["enabled"]) == (True, False)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "has space"}, "id"),
        ({"id": "pp/v1/#"}, "id"),
        ({"id": ""}, "id"),
        ({"id": "x" * 65}, "id"),
        ({"id": "server"}, "id"),  # the server's broker account
        ({"id": "server-2"}, "id"),  # a further replica's
        ({"id": "ok", "name": "x" * 129}, "name"),
        ({"id": "ok", "owner": "me"}, "owner"),
        ({"id": "ok", "name": "\x00"}, "name"),
    ],
)
async def test_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, login_as: LoginAs, body: dict[str, object], field: str
) -> None:
    """Each mistake is refused with its field and no device appears."""
    admin = await login_as("ada")
    assert_rejected(await client.post(DEVICES, json=body, headers=admin), 422, field)
    assert (await client.get(DEVICES, headers=admin)).json() == []


@pytest.mark.backends("each")  # a constraint or stored data, per database
async def test_duplicate_id_is_409(client: httpx.AsyncClient, login_as: LoginAs) -> None:
    """Registering an id twice is a conflict naming the id."""
    admin = await login_as("ada")
    await client.post(DEVICES, json={"id": "press-07"}, headers=admin)
    assert_rejected(await client.post(DEVICES, json={"id": "press-07"}, headers=admin), 409, "id")


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("GET", ""), ("PATCH", ""), ("POST", "/disable"), ("POST", "/credentials")],
)
async def test_unknown_and_malformed_ids(
    client: httpx.AsyncClient, login_as: LoginAs, method: str, suffix: str
) -> None:
    """An unknown id is 404; one no device could have is 422 naming device_id."""
    admin = await login_as("ada")
    body = {"name": "x"} if method == "PATCH" else None
    for device_id, status in [("ghost", 404), ("bad%00id", 422), ("x" * 65, 422)]:
        url = f"{DEVICES}/{device_id}{suffix}"
        response = await client.request(method, url, json=body, headers=admin)
        assert_rejected(response, status, "device_id" if status == 422 else None)


async def test_changes_are_audited_with_before_and_after(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    """Each change is one row with actor, target and what changed; no secret is logged."""
    admin = await login_as("ada")
    secret = (await client.post(DEVICES, json={"id": "press-07"}, headers=admin)).json()
    await client.patch(f"{DEVICES}/press-07", json={"name": "Press"}, headers=admin)
    await client.post(f"{DEVICES}/press-07/credentials", headers=admin)
    rows = [r for r in await audit_entries(client, admin) if r["target_id"] == "press-07"]
    actions = [r["action"] for r in rows]
    assert actions == ["device.rotate_credentials", "device.update", "device.create"]
    assert {(r["actor"], r["target_type"]) for r in rows} == {("ada", "device")}
    update = rows[1]
    assert (update["before"]["name"], update["after"]["name"]) == ("press-07", "Press")
    assert secret["mqtt_password"] not in str(rows)


@pytest.mark.backends("each")  # a constraint or stored data, per database
async def test_simultaneous_duplicates_get_one_201_and_409s(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    """Racing registrations of one id: exactly one wins, the others hear 409, never 500."""
    admin = await login_as("ada")
    racing = [client.post(DEVICES, json={"id": "dup"}, headers=admin) for _ in range(4)]
    statuses = sorted(r.status_code for r in await asyncio.gather(*racing))
    assert statuses == [201, 409, 409, 409]


@pytest.mark.backends("each")  # a constraint or stored data, per database
async def test_reported_gaps_are_listed_for_readers(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database
) -> None:
    admin, viewer = await login_as("ada"), await login_as("vic")
    await client.post(DEVICES, json={"id": "kiln-3"}, headers=admin)
    sample = Sample(61, 1_764_170_000_000, {"t": 1})
    batch = Batch("kiln-3", "s1", "replay", (sample,), gaps=(Gap(1, 60),))
    await store.store(database, [batch])
    listed = await client.get(f"{DEVICES}/kiln-3/gaps", headers=viewer)
    assert listed.status_code == 200
    [gap] = listed.json()
    assert (gap["stream"], gap["first_seq"], gap["last_seq"], gap["count"]) == ("s1", 1, 60, 60)
    assert (await client.get(f"{DEVICES}/nope/gaps", headers=viewer)).status_code == 404


@pytest.mark.backends("each")  # a constraint or stored data, per database
async def test_configuration_is_changed_checked_and_read_back(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    """Each change is a version; a setting no station can run is a 422 that changes nothing."""
    admin = await login_as("ada")
    await client.post(DEVICES, json={"id": "press-07"}, headers=admin)
    url = f"{DEVICES}/press-07/config"
    anyway = admin | {"If-Match": "*"}  # these checks are not about concurrent editors
    changed = await client.patch(url, json={"interval_s": 0.5, "units": {"t": "K"}}, headers=anyway)
    assert changed.status_code == 200, changed.text
    assert changed.json()["desired"] == {"interval_s": 0.5, "units": {"t": "K"}}
    for body, reason in [
        ({"interval_s": 0}, "interval_s must be 0.05-3600 s"),
        ({"heartbeat_s": 9999}, "heartbeat_s must be whole seconds"),
        ({"units": {"Bad Name": "K"}}, "bad channel name"),
        ({"rate": 2}, "rate"),
    ]:
        refused = await client.patch(url, json=body, headers=anyway)
        assert refused.status_code == 422 and reason in refused.text, refused.text
    removed = await client.patch(url, json={"units": None}, headers=anyway)
    assert removed.json()["desired"] == {"interval_s": 0.5}
    read = (await client.get(url, headers=await login_as("vic"))).json()
    assert read["desired_version"] == 2 and read["reported_version"] == 0
    missing = await client.patch(f"{DEVICES}/nope/config", json={}, headers=anyway)
    assert missing.status_code == 404
