"""Configuration over the API: ETag and If-Match, history with diffs, drift, rollback."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from core.db.engine import Database
from core.protocol.station_config import ConfigReport
from core.services import device_configs
from tests.webui.api.helpers import assert_rejected
from tests.webui.conftest import LoginAs

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

DEVICE = "/api/v1/devices/press-1"
CONFIG = f"{DEVICE}/config"


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
