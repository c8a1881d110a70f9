"""/api/v1/reports/offline-events and /availability: figures, CSV bytes, audit, refusals.

mill-01 lost its link from 23:00 to 00:30 UTC across the night of 9 to 10 March 2026,
replayed two samples from inside that time and reported 50 seqs its cap dropped.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest

from core.db.engine import Database
from core.rbac import ADMIN, PERMISSIONS
from core.services import roles, users
from core.services.actor import Actor
from tests.core.presence_data import add_device, add_gap, add_period, add_samples
from tests.webui.api.helpers import assert_rejected, audit_entries
from tests.webui.conftest import LoginAs

OFFLINE = "/api/v1/reports/offline-events"
AVAILABILITY = "/api/v1/reports/availability"
NIGHT = {"from": "2026-03-09T00:00:00Z", "to": "2026-03-11T00:00:00Z"}
REPORTER_PASSWORD = "reporter-password-1"


@pytest.fixture
async def history(database: Database) -> None:
    """mill-01's night, and a device that never went offline."""
    await add_device(database, "mill-01", name="Mill 1", created="2026-03-01 00:00")
    await add_device(database, "saw-01", name='Saw, "big"', created="2026-03-10 12:00")
    await add_period(database, "mill-01", "lost", "2026-03-09 23:00", "2026-03-10 00:30")
    replayed = ["2026-03-09 23:10", "2026-03-10 00:20", "2026-03-10 00:30"]  # the last: after
    await add_samples(database, "mill-01", "replay", replayed, first_seq=1)
    await add_gap(database, "mill-01", 11, 60, "2026-03-10 00:31")


async def test_offline_events_as_json(
    client: httpx.AsyncClient, login_as: LoginAs, history: None
) -> None:
    """Times in UTC ISO 8601, the duration as an exact decimal string, the counts as numbers."""
    admin = await login_as("ada")
    response = await client.get(OFFLINE, params={**NIGHT, "device_id": "mill-01"}, headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["report"] == "offline-events"
    assert body["filters"] == {
        "device": "mill-01",
        "from": "2026-03-09T00:00:00+00:00",
        "to": "2026-03-11T00:00:00+00:00",
    }
    assert [(c["key"], c["unit"]) for c in body["columns"]] == [
        ("device_id", ""),
        ("device_name", ""),
        ("started_at", ""),
        ("ended_at", ""),
        ("duration_s", "s"),
        ("reason", ""),
        ("replayed_after", "samples"),
        ("dropped_by_cap", "samples"),
    ]
    assert body["rows"] == [
        {
            "device_id": "mill-01",
            "device_name": "Mill 1",
            "started_at": "2026-03-09T23:00:00+00:00",
            "ended_at": "2026-03-10T00:30:00+00:00",
            "duration_s": "5400",
            "reason": "lost",
            "replayed_after": 2,
            "dropped_by_cap": 50,
        }
    ]


async def test_a_csv_export_is_exact_and_audited_once(
    client: httpx.AsyncClient, login_as: LoginAs, history: None
) -> None:
    """The bytes of the download, and one reports.export entry saying what was exported."""
    admin = await login_as("ada")
    response = await client.get(OFFLINE, params={**NIGHT, "format": "csv"}, headers=admin)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="offline-events-')
    assert response.content == (
        b"device_id,device_name,started_at,ended_at,duration_s,reason,replayed_after,"
        b"dropped_by_cap\r\n"
        b"mill-01,Mill 1,2026-03-09T23:00:00+00:00,2026-03-10T00:30:00+00:00,5400,lost,2,50\r\n"
    )
    await client.get(OFFLINE, params=NIGHT, headers=admin)  # JSON: read, not exported
    exports = await audit_entries(client, admin, action="reports.export")
    assert [(e["actor"], e["target_type"], e["target_id"], e["after"]) for e in exports] == [
        (
            "ada",
            "report",
            "offline-events",
            {
                "format": "csv",
                "rows": 1,
                "device": "all devices",
                "from": "2026-03-09T00:00:00+00:00",
                "to": "2026-03-11T00:00:00+00:00",
            },
        )
    ]


async def test_availability_in_a_zone_as_json_and_csv(
    client: httpx.AsyncClient, login_as: LoginAs, history: None
) -> None:
    """In Berlin the 90 minutes fall on the 10th (93.75%); saw-01 counts from its 12:00 UTC
    registration (13:00 in Berlin), online throughout. A name with a comma and quotes is
    quoted in the CSV."""
    admin = await login_as("ada")
    asked = {**NIGHT, "tz": "Europe/Berlin"}
    response = await client.get(AVAILABILITY, params=asked, headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["filters"]["tz"] == "Europe/Berlin"
    rows = [
        (r["device_id"], r["day"], r["observed_s"], r["offline_s"], r["online_pct"])
        for r in body["rows"]
    ]
    assert rows == [
        ("mill-01", "2026-03-09", "82800", "0", "100.00"),
        ("mill-01", "2026-03-10", "86400", "5400", "93.75"),
        ("mill-01", "2026-03-11", "3600", "0", "100.00"),
        ("saw-01", "2026-03-10", "39600", "0", "100.00"),
        ("saw-01", "2026-03-11", "3600", "0", "100.00"),
    ]
    csv = await client.get(
        AVAILABILITY, params={**asked, "device_id": "saw-01", "format": "csv"}, headers=admin
    )
    assert csv.status_code == 200, csv.text
    assert csv.content == (
        b"device_id,device_name,day,observed_s,online_s,offline_s,online_pct\r\n"
        b'saw-01,"Saw, ""big""",2026-03-10,39600,39600,0,100.00\r\n'
        b'saw-01,"Saw, ""big""",2026-03-11,3600,3600,0,100.00\r\n'
    )
    exports = await audit_entries(client, admin, action="reports.export")
    assert [(e["target_id"], e["after"]["format"], e["after"]["tz"]) for e in exports] == [
        ("availability", "csv", "Europe/Berlin")
    ]


async def test_the_default_range_is_the_week_up_to_now(
    client: httpx.AsyncClient, login_as: LoginAs, history: None
) -> None:
    """No from, no to: [now - 7 days, now), said in the filters."""
    admin = await login_as("ada")
    for route in (OFFLINE, AVAILABILITY):
        response = await client.get(route, headers=admin)
        assert response.status_code == 200, response.text
        filters = response.json()["filters"]
        start = datetime.fromisoformat(filters["from"])
        end = datetime.fromisoformat(filters["to"])
        assert end - start == timedelta(days=7)
        assert filters["device"] == "all devices"


@pytest.mark.parametrize("route", [OFFLINE, AVAILABILITY])
@pytest.mark.parametrize(
    ("params", "status", "field", "words"),
    [
        ({"from": "2026-03-11T00:00:00Z", "to": "2026-03-11T00:00:00Z"}, 422, "from", "before"),
        ({"from": "2025-03-09T00:00:00Z", "to": "2026-03-11T00:00:00Z"}, 422, "from", "366"),
        ({"from": "2026-03-09T00:00:00"}, 422, "from", "offset"),
        ({"device_id": "nope-1"}, 404, None, "no device with id 'nope-1'"),
        ({"format": "xml"}, 422, "format", None),
    ],
    ids=["empty", "over a year", "no offset", "unknown device", "format"],
)
async def test_what_is_refused_and_why(
    client: httpx.AsyncClient,
    login_as: LoginAs,
    history: None,
    route: str,
    params: dict[str, str],
    status: int,
    field: str | None,
    words: str | None,
) -> None:
    """A reason a person can read, blaming the field at fault."""
    response = await client.get(route, params=params, headers=await login_as("ada"))
    assert_rejected(response, status, field)
    if words is not None:
        assert words in response.text


async def test_an_unknown_zone_is_named(
    client: httpx.AsyncClient, login_as: LoginAs, history: None
) -> None:
    """422 on tz, saying which zone is unknown."""
    response = await client.get(
        AVAILABILITY, params={"tz": "Mars/Olympus_Mons"}, headers=await login_as("ada")
    )
    assert_rejected(response, 422, "tz")
    assert "unknown time zone 'Mars/Olympus_Mons'" in response.json()["detail"]


async def test_both_permissions_are_needed(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database, history: None
) -> None:
    """The Viewer lacks reports:read; a reporter without devices:read may not see devices."""
    async with database.session() as session:
        await roles.create_role(
            session,
            actor=Actor("ada", permissions=frozenset(PERMISSIONS), roles=(ADMIN,)),
            name="Reporters",
            description="",
            permissions=["reports:read"],
        )
        await users.bootstrap_user(
            session, username="rita", password=REPORTER_PASSWORD, roles=["Reporters"]
        )
    login = await client.post(
        "/api/v1/auth/login", json={"username": "rita", "password": REPORTER_PASSWORD}
    )
    reporter = {"Authorization": f"Bearer {login.json()['access_token']}"}
    viewer = await login_as("vic")
    for route in (OFFLINE, AVAILABILITY):
        for caller, lacking in ((viewer, "reports:read"), (reporter, "devices:read")):
            response = await client.get(route, params={"format": "csv"}, headers=caller)
            assert response.status_code == 403, response.text
            assert response.json()["detail"] == f"'{lacking}' is required"
    admin = await login_as("ada")
    assert await audit_entries(client, admin, action="reports.export") == []
