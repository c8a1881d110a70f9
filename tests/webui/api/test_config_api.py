"""Configuration over the API: ETag and If-Match, history with diffs, drift, rollback."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from core.db.engine import Database
from core.protocol.commands import Result
from core.protocol.station_config import ConfigReport
from core.services import commands, device_configs
from core.services.actor import Actor
from tests.webui.api.helpers import assert_rejected
from tests.webui.conftest import LoginAs

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

DEVICE = "/api/v1/devices/press-1"
CONFIG = f"{DEVICE}/config"
READER = Actor(name="test", permissions=frozenset({"devices:read"}))


async def _press(
    client: httpx.AsyncClient, admin: dict[str, str], *edits: dict[str, object]
) -> None:
    created = await client.post("/api/v1/devices", json={"id": "press-1"}, headers=admin)
    assert created.status_code == 201, created.text
    for version, changes in enumerate(edits):
        changed = await client.patch(
            CONFIG, json=changes, headers=admin | {"If-Match": f'"{version}"'}
        )
        assert changed.status_code == 200, changed.text


async def test_a_change_names_the_version_it_was_made_against(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin = await login_as("ada")
    await _press(client, admin)
    read = await client.get(CONFIG, headers=admin)
    assert read.headers["ETag"] == '"0"' and read.json()["drift"] is None

    missing = await client.patch(CONFIG, json={"interval_s": 2}, headers=admin)
    assert_rejected(missing, 428, "If-Match")
    assert "ETag" in missing.json()["detail"]
    for junk in ("three", '"3', 'W/"3"', "1" * 12, "3, 4"):
        assert_rejected(
            await client.patch(CONFIG, json={"interval_s": 2}, headers=admin | {"If-Match": junk}),
            422,
            "If-Match",
        )
    changed = await client.patch(
        CONFIG, json={"interval_s": 2}, headers=admin | {"If-Match": read.headers["ETag"]}
    )
    assert changed.status_code == 200, changed.text
    assert changed.headers["ETag"] == '"1"' and changed.json()["desired_version"] == 1

    stale = await client.patch(CONFIG, json={"interval_s": 3}, headers=admin | {"If-Match": '"0"'})
    assert_rejected(stale, 409, "version")
    assert "version 1 is current" in stale.json()["detail"]
    anyway = await client.patch(CONFIG, json={"interval_s": 3}, headers=admin | {"If-Match": "*"})
    assert anyway.json()["desired_version"] == 2
    assert (await client.get(CONFIG, headers=admin)).json()["desired"] == {"interval_s": 3}


async def test_two_editors_of_one_version_one_wins(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    """Both read version 3 and send at once: one 200, one 409, one new version."""
    admin, other = await login_as("ada"), await login_as("ada")
    await _press(client, admin, {"interval_s": 1}, {"interval_s": 2}, {"heartbeat_s": 5})
    answers = await asyncio.gather(
        client.patch(CONFIG, json={"interval_s": 4}, headers=admin | {"If-Match": '"3"'}),
        client.patch(CONFIG, json={"interval_s": 5}, headers=other | {"If-Match": '"3"'}),
    )
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    history = (await client.get(f"{CONFIG}/history", headers=admin)).json()
    assert [v["version"] for v in history] == [4, 3, 2, 1]
    winner = next(a for a in answers if a.status_code == 200).json()
    assert history[0]["settings"] == winner["desired"]


async def test_history_lists_who_changed_what_and_when(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin = await login_as("ada")
    await _press(client, admin, {"interval_s": 1}, {"interval_s": 2, "units": {"rpm": "1/min"}})
    viewer = await login_as("vic")
    history = await client.get(f"{CONFIG}/history", headers=viewer)
    assert history.status_code == 200, history.text
    newest, first = history.json()
    assert (newest["version"], newest["changed_by"], newest["source"]) == (2, "ada", "edit")
    assert [c["text"] for c in newest["changes"]] == ["interval_s: 1 → 2", "units.rpm: added 1/min"]
    assert newest["changes"][1] == {
        "path": "units.rpm", "kind": "added", "old": None, "new": "1/min",
        "text": "units.rpm: added 1/min",
    }  # fmt: skip
    assert [c["text"] for c in first["changes"]] == ["interval_s: added 1"]

    page = await client.get(f"{CONFIG}/history", params={"limit": 1, "before": 2}, headers=viewer)
    assert [v["version"] for v in page.json()] == [1]
    one = await client.get(f"{CONFIG}/history/2", headers=viewer)
    assert one.json() == newest
    assert_rejected(await client.get(f"{CONFIG}/history/9", headers=viewer), 404)
    assert_rejected(await client.get("/api/v1/devices/nope/config/history", headers=viewer), 404)
    assert_rejected(await client.get(f"{CONFIG}/history", params={"limit": 0}, headers=viewer), 422)


async def test_drift_says_which_version_the_station_lags_and_since_when(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database
) -> None:
    admin = await login_as("ada")
    await _press(client, admin, {"interval_s": 1}, {"interval_s": 2})
    async with database.session() as session:
        report = ConfigReport("press-1", 1, {"interval_s": 1}, "applied", 1)
        await device_configs.record_report(session, report=report, news=True)
    read = (await client.get(CONFIG, headers=admin)).json()
    second = (await client.get(f"{CONFIG}/history/2", headers=admin)).json()
    assert read["drift"] == {
        "desired_version": 2, "reported_version": 1, "since": second["changed_at"],
    }  # fmt: skip


async def test_rollback_makes_a_new_version_equal_to_the_old_one(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin = await login_as("ada")
    await _press(client, admin, {"interval_s": 1}, {"interval_s": 2, "heartbeat_s": 5})
    rollback = f"{CONFIG}/rollback"
    assert_rejected(await client.post(rollback, json={"version": 1}, headers=admin), 428)
    stale = await client.post(rollback, json={"version": 1}, headers=admin | {"If-Match": '"1"'})
    assert_rejected(stale, 409, "version")
    missing = await client.post(rollback, json={"version": 7}, headers=admin | {"If-Match": '"2"'})
    assert_rejected(missing, 404, "version")
    same = await client.post(rollback, json={"version": 2}, headers=admin | {"If-Match": '"2"'})
    assert_rejected(same, 422, "version")
    assert "nothing to roll back" in same.json()["detail"]
    viewer = await client.post(
        rollback, json={"version": 1}, headers=await login_as("vic") | {"If-Match": '"2"'}
    )
    assert_rejected(viewer, 403)

    done = await client.post(rollback, json={"version": 1}, headers=admin | {"If-Match": '"2"'})
    assert done.status_code == 200, done.text
    assert done.headers["ETag"] == '"3"'
    assert (done.json()["desired_version"], done.json()["desired"]) == (3, {"interval_s": 1})
    newest = (await client.get(f"{CONFIG}/history/3", headers=admin)).json()
    assert (newest["source"], newest["note"]) == ("rollback", "rollback to v1")
    assert [c["text"] for c in newest["changes"]] == [
        "heartbeat_s: removed (was 5)",
        "interval_s: 2 → 1",
    ]


BULK = "/api/v1/configs/bulk"


async def _fleet(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """press-1 and press-2 enabled, press-3 disabled, kiln-1 enabled."""
    for device_id in ("press-1", "press-2", "press-3", "kiln-1"):
        created = await client.post("/api/v1/devices", json={"id": device_id}, headers=admin)
        assert created.status_code == 201, created.text
    disabled = await client.post("/api/v1/devices/press-3/disable", headers=admin)
    assert disabled.status_code == 200, disabled.text


async def _batches(database: Database) -> list[object]:
    async with database.session() as session:
        return [c.batch_id for c in await commands.search(session, actor=READER)]


@pytest.mark.parametrize(
    ("body", "status", "field", "reason"),
    [
        ({"changes": {"interval_s": 2}, "selector": {"pattern": "lathe-*"}}, 422, "selector",
         "nothing matched: there are no devices matching 'lathe-*'"),
        ({"changes": {"interval_s": 2}, "selector": {"enabled": False, "pattern": "kiln-*"}},
         422, "selector", "nothing matched"),
        ({"changes": {"interval_s": 2}}, 422, None, "either by id"),
        ({"changes": {"interval_s": 2}, "devices": ["press-1"], "selector": {}}, 422, None,
         "either by id"),
        ({"changes": {}, "devices": ["press-1"]}, 422, "changes", "at least one setting"),
        ({"changes": {"interval_s": 0}, "devices": ["press-1"]}, 422, "changes.interval_s",
         "press-1: interval_s must be 0.05-3600 s"),
        ({"changes": {"interval_s": 2}, "devices": ["nope"]}, 404, "devices", "'nope'"),
        ({"changes": {"interval_s": 2}, "devices": [f"d-{i}" for i in range(1001)]}, 422,
         "devices", "at most 1000"),
        ({"changes": {"interval_s": 2}, "selector": {"pattern": "press-1/x"}}, 422, "pattern",
         "should match pattern"),
        # press-1 takes it, press-3 cannot: all or nothing, and press-3 is named.
        ({"changes": {"interval_s": 2}, "devices": ["press-3", "press-1"]}, 409, None,
         "device 'press-3' is disabled"),
        ({"changes": {"interval_s": 2}, "selector": {"pattern": "press-*"}}, 409, None,
         "device 'press-3' is disabled"),
    ],
)  # fmt: skip
async def test_a_refused_change_to_many_devices_creates_nothing(
    client: httpx.AsyncClient,
    login_as: LoginAs,
    database: Database,
    body: dict[str, object],
    status: int,
    field: str | None,
    reason: str,
) -> None:
    admin = await login_as("ada")
    await _fleet(client, admin)
    refused = await client.post(BULK, json=body, headers=admin)
    assert_rejected(refused, status, field)
    assert reason in refused.text, refused.text
    assert await _batches(database) == []
    press = (await client.get("/api/v1/devices/press-1/config", headers=admin)).json()
    assert press["desired_version"] == 0


async def test_one_change_reaches_each_chosen_device_and_is_followed(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database
) -> None:
    admin = await login_as("ada")
    await _fleet(client, admin)
    body = {"changes": {"interval_s": 2}, "selector": {"enabled": True, "pattern": "press-*"}}
    assert_rejected(await client.post(BULK, json=body, headers=await login_as("vic")), 403)
    sent = await client.post(BULK, json=body | {"timeout_s": 600}, headers=admin)
    assert sent.status_code == 202, sent.text
    batch = sent.json()
    assert [(c["device_id"], c["config_version"]) for c in batch["commands"]] == [
        ("press-1", 1),
        ("press-2", 1),
    ]
    async with database.session() as session:
        made = await commands.search(session, actor=READER, batch_id=uuid.UUID(batch["batch_id"]))
    assert sorted((c.device_id, c.kind, c.args) for c in made) == [
        ("press-1", "UpdateConfig", {"interval_s": 2}),
        ("press-2", "UpdateConfig", {"interval_s": 2}),
    ]
    assert {str(c.batch_id) for c in made} == {batch["batch_id"]}
    version = (await client.get("/api/v1/devices/press-2/config/history/1", headers=admin)).json()
    assert (version["source"], version["command_id"]) == (
        "bulk",
        batch["commands"][1]["command_id"],
    )
    kiln = (await client.get("/api/v1/devices/kiln-1/config", headers=admin)).json()
    assert kiln["desired_version"] == 0  # not chosen

    follow = f"{BULK}/{batch['batch_id']}"
    waiting = (await client.get(follow, headers=await login_as("vic"))).json()
    assert (waiting["counts"], waiting["done"]) == ({"queued": 2}, False)
    answers = {"press-1": ("succeeded", ""), "press-2": ("rejected", "units: no such channel")}
    async with database.session() as session:
        for command in made:
            state, detail = answers[command.device_id]
            await commands.mark_sent(session, command_id=command.id)
            result = Result(command.device_id, str(command.id), state, detail)  # type: ignore[arg-type]
            assert (
                await commands.record_result(session, result=result, device_id=command.device_id)
                == "moved"
            )
    ended = (await client.get(follow, headers=admin)).json()
    assert (ended["counts"], ended["done"]) == ({"succeeded": 1, "rejected": 1}, True)
    assert [(d["device_id"], d["outcome"]) for d in ended["devices"]] == [
        ("press-1", "applied"),
        ("press-2", "refused: units: no such channel"),
    ]
    assert_rejected(await client.get(f"{BULK}/{uuid.uuid4()}", headers=admin), 404)
