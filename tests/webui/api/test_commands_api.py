"""Commands through the API: sending, reading, filtering, cancelling, and who may do which."""

from __future__ import annotations

from datetime import datetime

import httpx
import pytest

from tests.webui.api.helpers import assert_rejected, audit_entries
from tests.webui.conftest import LoginAs

pytestmark = pytest.mark.backends("one")

DEVICES = "/api/v1/devices"
COMMANDS = "/api/v1/commands"


async def _fleet(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    for device_id in ("press-07", "lathe-1", "old-1"):
        created = await client.post(DEVICES, json={"id": device_id}, headers=admin)
        assert created.status_code == 201, created.text
    assert (await client.post(f"{DEVICES}/old-1/disable", headers=admin)).status_code == 200


async def _send(
    client: httpx.AsyncClient, who: dict[str, str], device_id: str = "press-07", **body: object
) -> httpx.Response:
    return await client.post(
        f"{DEVICES}/{device_id}/commands", json={"kind": "Ping"} | body, headers=who
    )


async def test_a_sent_command_is_queued_and_readable(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin = await login_as("ada")
    await _fleet(client, admin)
    created = await _send(client, admin, timeout_s=10)
    assert created.status_code == 201, created.text
    command = created.json()
    assert (command["kind"], command["state"], command["created_by"]) == ("Ping", "queued", "ada")
    assert (command["args"], command["attempts"], command["sent_at"]) == ({}, 0, None)
    created_at = datetime.fromisoformat(command["created_at"])
    assert (datetime.fromisoformat(command["expires_at"]) - created_at).total_seconds() == 10
    read = await client.get(f"{COMMANDS}/{command['id']}", headers=admin)
    assert read.status_code == 200 and read.json() == command
    entries = await audit_entries(client, admin, action="command.create")
    assert [e["target_id"] for e in entries] == [command["id"]]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"kind": "Reboot"}, 422, "kind"),
        ({"args": {"loud": True}}, 422, "args.loud"),
        ({"kind": "UpdateConfig", "args": {"interval_s": "fast"}}, 422, "args.interval_s"),
        ({"timeout_s": 0}, 422, "timeout_s"),
        ({"colour": "red"}, 422, "colour"),
    ],
)
async def test_a_bad_command_is_refused_naming_the_field(
    client: httpx.AsyncClient,
    login_as: LoginAs,
    body: dict[str, object],
    status: int,
    field: str,
) -> None:
    admin = await login_as("ada")
    await _fleet(client, admin)
    response = await client.post(
        f"{DEVICES}/press-07/commands", json={"kind": "Ping"} | body, headers=admin
    )
    assert_rejected(response, status, field)
    assert (await client.get(COMMANDS, headers=admin)).json() == []


async def test_unknown_and_disabled_devices(client: httpx.AsyncClient, login_as: LoginAs) -> None:
    admin = await login_as("ada")
    await _fleet(client, admin)
    assert_rejected(await _send(client, admin, device_id="nobody"), 404)
    assert_rejected(await _send(client, admin, device_id="old-1"), 409)
    assert_rejected(await client.get(f"{DEVICES}/nobody/commands", headers=admin), 404)


async def test_a_viewer_reads_commands_but_sends_and_cancels_none(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin, viewer = await login_as("ada"), await login_as("vic")
    await _fleet(client, admin)
    command = (await _send(client, admin)).json()
    assert (await _send(client, viewer)).status_code == 403
    assert (
        await client.post(f"{COMMANDS}/{command['id']}/cancel", headers=viewer)
    ).status_code == 403
    assert (await client.get(f"{COMMANDS}/{command['id']}", headers=viewer)).status_code == 200
    listed = await client.get(f"{DEVICES}/press-07/commands", headers=viewer)
    assert [c["id"] for c in listed.json()] == [command["id"]]
    assert (await client.get(COMMANDS, headers=viewer)).status_code == 200


async def test_pages_come_newest_first_and_filters_narrow_them(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin = await login_as("ada")
    await _fleet(client, admin)
    mine = [(await _send(client, admin)).json()["id"] for _ in range(3)]
    theirs = (await _send(client, admin, device_id="lathe-1")).json()
    page = await client.get(
        f"{DEVICES}/press-07/commands", params={"limit": 2, "offset": 1}, headers=admin
    )
    assert [c["id"] for c in page.json()] == [mine[1], mine[0]]
    by_device = await client.get(COMMANDS, params={"device_id": "lathe-1"}, headers=admin)
    assert [c["id"] for c in by_device.json()] == [theirs["id"]]
    since = await client.get(COMMANDS, params={"since": theirs["created_at"]}, headers=admin)
    assert [c["id"] for c in since.json()] == [theirs["id"]]
    queued = await client.get(COMMANDS, params={"state": "queued", "kind": "Ping"}, headers=admin)
    assert len(queued.json()) == 4
    assert_rejected(
        await client.get(COMMANDS, params={"state": "lost"}, headers=admin), 422, "state"
    )
    naive = await client.get(COMMANDS, params={"until": "2030-01-01T00:00:00"}, headers=admin)
    assert_rejected(naive, 422, "until")
    too_many = await client.get(
        f"{DEVICES}/press-07/commands", params={"limit": 201}, headers=admin
    )
    assert_rejected(too_many, 422, "limit")


async def test_cancel_before_sending_and_not_after(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin = await login_as("ada")
    await _fleet(client, admin)
    command = (await _send(client, admin)).json()
    canceled = await client.post(f"{COMMANDS}/{command['id']}/cancel", headers=admin)
    assert canceled.status_code == 200, canceled.text
    assert (canceled.json()["state"], canceled.json()["detail"]) == ("canceled", "canceled by ada")
    again = await client.post(f"{COMMANDS}/{command['id']}/cancel", headers=admin)
    assert_rejected(again, 409)
    assert "already ended" in again.json()["detail"]
    unknown = "00000000-0000-4000-8000-000000000000"
    assert_rejected(await client.post(f"{COMMANDS}/{unknown}/cancel", headers=admin), 404)
    assert_rejected(await client.get(f"{COMMANDS}/not-an-id", headers=admin), 422, "command_id")
    entries = await audit_entries(client, admin, action="command.cancel")
    assert [e["actor"] for e in entries] == ["ada"]


async def test_update_config_asks_for_the_next_configuration_version(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin = await login_as("ada")
    await _fleet(client, admin)
    created = await _send(client, admin, kind="UpdateConfig", args={"interval_s": 2})
    assert created.status_code == 201, created.text
    assert created.json()["config_version"] == 1
    config = (await client.get(f"{DEVICES}/press-07/config", headers=admin)).json()
    assert (config["desired_version"], config["desired"]) == (1, {"interval_s": 2.0})
