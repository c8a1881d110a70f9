"""/api/v1/reports/config-changes and /api/v1/reports/audit: JSON, CSV, who may read them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx

from core.db.engine import Database
from core.protocol.station_config import ConfigReport
from core.services import config_history, device_configs
from tests.webui.api.helpers import assert_rejected, audit_entries
from tests.webui.conftest import LoginAs

CHANGES = "/api/v1/reports/config-changes"
AUDIT = "/api/v1/reports/audit"
CONFIG = "/api/v1/devices/press-1/config"
REFUSAL = "heartbeat_s 1 is below this station's 5 s"
NOW = datetime.now(UTC)
# Around the test, `to` given in another offset: a report reads it as the same moment.
WIDE = {
    "from": (NOW - timedelta(days=1)).isoformat(),
    "to": (NOW + timedelta(days=1)).astimezone(timezone(timedelta(hours=1))).isoformat(),
}


async def _edits(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """press-1 ("Press one"): v1 interval 1, v2 interval 2, v3 heartbeat 1, v4 heartbeat 10."""
    created = await client.post(
        "/api/v1/devices", json={"id": "press-1", "name": "Press one"}, headers=admin
    )
    assert created.status_code == 201, created.text
    for version, changes in enumerate(
        ({"interval_s": 1}, {"interval_s": 2}, {"heartbeat_s": 1}, {"heartbeat_s": 10})
    ):
        changed = await client.patch(
            CONFIG, json=changes, headers=admin | {"If-Match": f'"{version}"'}
        )
        assert changed.status_code == 200, changed.text


async def _reports(database: Database, *reports: ConfigReport) -> None:
    for report in reports:
        async with database.session() as session:
            assert await device_configs.record_report(session, report=report, news=True)


async def _stored(database: Database) -> dict[int, Any]:
    async with database.session() as session:
        entries = await config_history.entries(session, device_id="press-1")
    return {e.version: e for e in entries}


def _iso(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat()


async def _login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_the_config_changes_report_shows_each_version_its_diff_and_outcome(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database
) -> None:
    admin = await login_as("ada")
    await _edits(client, admin)
    await _reports(
        database,
        ConfigReport("press-1", 2, {"interval_s": 2}, "applied", 2),  # went past v1
        ConfigReport("press-1", 2, {"interval_s": 2}, "rejected", 3, REFUSAL),
    )
    response = await client.get(CHANGES, params=WIDE, headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    stored = await _stored(database)
    assert body["report"] == "config-changes" and body["title"] == "Configuration changes"
    assert body["filters"] == {
        "device": "all",
        "from": (NOW - timedelta(days=1)).isoformat(),
        "to": (NOW + timedelta(days=1)).isoformat(),
    }
    assert [c["key"] for c in body["columns"]] == [
        "device_id", "device_name", "version", "changed_at", "changed_by", "source", "note",
        "changes", "outcome", "outcome_at", "outcome_detail",
    ]  # fmt: skip
    shown = [
        (r["version"], r["changed_by"], r["changes"], r["outcome"], r["outcome_detail"])
        for r in body["rows"]
    ]
    assert shown == [
        (1, "ada", "interval_s: added 1", "superseded", "superseded by v2"),
        (2, "ada", "interval_s: 1 → 2", "applied", None),
        (3, "ada", "heartbeat_s: added 1", "rejected", REFUSAL),
        (4, "ada", "heartbeat_s: 1 → 10", "pending", None),
    ]
    assert [(r["changed_at"], r["outcome_at"]) for r in body["rows"]] == [
        (_iso(stored[v].changed_at), _iso(stored[v].outcome_at)) for v in (1, 2, 3, 4)
    ]
    assert {r["device_name"] for r in body["rows"]} == {"Press one"}


async def test_the_config_changes_csv_is_exact_and_its_export_audited(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database
) -> None:
    admin = await login_as("ada")
    await _edits(client, admin)
    await _reports(database, ConfigReport("press-1", 2, {"interval_s": 2}, "applied", 2))
    stored = await _stored(database)
    window = {  # v2 alone: [its changed_at, v3's)
        "from": _iso(stored[2].changed_at), "to": _iso(stored[3].changed_at),
        "device_id": "press-1", "format": "csv",
    }  # fmt: skip
    response = await client.get(CHANGES, params=window, headers=admin)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith(
        'attachment; filename="config-changes-'
    )
    assert response.text == (
        "device_id,device_name,version,changed_at,changed_by,source,note,changes,outcome,"
        "outcome_at,outcome_detail\r\n"
        f"press-1,Press one,2,{_iso(stored[2].changed_at)},ada,edit,,interval_s: 1 → 2,"
        f"applied,{_iso(stored[2].outcome_at)},\r\n"
    )
    [export] = await audit_entries(client, admin, action="reports.export")
    assert (export["actor"], export["target_type"], export["target_id"]) == (
        "ada", "report", "config-changes",
    )  # fmt: skip
    assert export["after"] == {
        "format": "csv", "rows": 1, "device": "press-1 (Press one)",
        "from": _iso(stored[2].changed_at), "to": _iso(stored[3].changed_at),
    }  # fmt: skip


async def test_the_config_changes_report_refuses_what_it_cannot_answer(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin = await login_as("ada")
    await _edits(client, admin)
    missing = await client.get(CHANGES, params={"device_id": "press-9"}, headers=admin)
    assert_rejected(missing, 404)
    same = {"from": "2026-11-30T10:00:00Z", "to": "2026-11-30T11:00:00+01:00"}
    backwards = await client.get(CHANGES, params=same, headers=admin)
    assert_rejected(backwards, 422, "from")
    assert "must be before" in backwards.json()["detail"]
    naive = await client.get(CHANGES, params={"from": "2026-11-30T10:00:00"}, headers=admin)
    assert_rejected(naive, 422, "from")
    assert_rejected(await client.get(CHANGES, params={"format": "xls"}, headers=admin), 422)
    assert_rejected(await client.get(CHANGES, headers=await login_as("vic")), 403)


async def test_the_audit_report_filters_by_actor_family_target_and_time(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin = await login_as("ada")
    await _edits(client, admin)
    log = await audit_entries(client, admin)  # newest first
    device = [e for e in log if e["actor"] == "ada" and e["action"].startswith("device.")]
    assert [e["action"] for e in reversed(device)] == ["device.create"] + ["device.config"] * 4
    config = [e["id"] for e in reversed(device)][1:]

    async def ids(**params: str) -> list[int]:
        response = await client.get(AUDIT, params=WIDE | params, headers=admin)
        assert response.status_code == 200, response.text
        return [row["id"] for row in response.json()["rows"]]

    everything = await ids()
    assert everything == sorted(e["id"] for e in log)
    assert await ids(actor="ada", action="device") == [e["id"] for e in reversed(device)]
    assert await ids(action="device.config", target_type="device", target_id="press-1") == config
    assert await ids(action="device.config.applied") == []  # no station has said anything
    newer, older = (e for e in log if e["id"] in config[1:3])  # the log is newest first
    assert await ids(actor="ada", **{"from": older["at"], "to": newer["at"]}) == [config[1]]
    users = [e["id"] for e in log if e["action"].startswith("user.")]
    assert len(users) == 2  # ada and vic, made from the shell
    assert await ids(action="user") == sorted(users)
    row = (await client.get(AUDIT, params=WIDE | {"action": "device.create"}, headers=admin)).json()
    assert row["rows"][0] | {"id": 0, "at": ""} == {
        "id": 0, "at": "", "actor": "ada", "actor_name": "ada", "action": "device.create",
        "target_type": "device", "target_id": "press-1", "target_name": "Press one (press-1)",
        "change": row["rows"][0]["change"],
    }  # fmt: skip


async def test_the_audit_report_needs_audit_read_too_and_its_csv_is_audited(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin = await login_as("ada")
    role = await client.post(
        "/api/v1/roles",
        json={"name": "Reporter", "permissions": ["reports:read", "devices:read"]},
        headers=admin,
    )
    assert role.status_code == 201, role.text
    made = await client.post(
        "/api/v1/users",
        json={"username": "rita", "password": "reporter-pass-1", "roles": ["Reporter"]},
        headers=admin,
    )
    assert made.status_code == 201, made.text
    rita = await _login(client, "rita", "reporter-pass-1")
    assert (await client.get(CHANGES, headers=rita)).status_code == 200
    assert_rejected(await client.get(AUDIT, headers=rita), 403)
    assert_rejected(await client.get(AUDIT, headers=await login_as("vic")), 403)
    refused = await audit_entries(client, admin, action="access.denied")
    assert [(e["actor"], e["target_id"]) for e in refused] == [
        ("vic", "GET /api/v1/reports/audit"),
        ("rita", "GET /api/v1/reports/audit"),
    ]

    response = await client.get(
        AUDIT, params={"actor": "rita", "action": "auth", "format": "csv"}, headers=admin
    )
    assert response.status_code == 200, response.text
    lines = response.text.splitlines()
    assert lines[0] == "id,at,actor,actor_name,action,target_type,target_id,target_name,change"
    assert [line.split(",")[4] for line in lines[1:]] == ["auth.login"]
    [export] = await audit_entries(client, admin, action="reports.export")
    assert export["target_id"] == "audit"
    assert {k: export["after"][k] for k in ("format", "rows", "actor", "action")} == {
        "format": "csv", "rows": 1, "actor": "rita", "action": "auth",
    }  # fmt: skip
