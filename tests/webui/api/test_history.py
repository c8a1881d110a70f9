"""History and CSV export through the API: who may read what, and the answers they get."""

from __future__ import annotations

import csv
from datetime import timedelta
from decimal import Decimal

import httpx

from core.db.engine import Database
from core.services.telemetry import store
from tests.core.history_data import DEVICE, T0, add_device, batch
from tests.webui.api.helpers import assert_rejected, audit_entries
from tests.webui.conftest import LoginAs

BASE = f"/api/v1/devices/{DEVICE}"
DAY = {"start": T0.isoformat(), "end": (T0 + timedelta(days=1)).isoformat()}


async def _seed(database: Database) -> None:
    await add_device(database)
    temps = batch([(0, Decimal("9.5")), (10, Decimal("10.25")), (3600, Decimal("21.50"))])
    door = batch([(5, True)], channel="door", stream="s2", origin="replay")
    await store.store(database, [temps, door])


async def test_channels_are_listed_for_a_viewer(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database
) -> None:
    await _seed(database)
    response = await client.get(f"{BASE}/channels", headers=await login_as("vic"))
    assert response.status_code == 200, response.text
    assert response.json() == [
        {"channel": "door", "type": "boolean", "latest": "2025-11-26T08:00:05Z"},
        {"channel": "temp", "type": "decimal", "latest": "2025-11-26T09:00:00Z"},
    ]


async def test_history_is_bucketed_for_a_viewer(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database
) -> None:
    await _seed(database)
    params = DAY | {"channel": "temp", "buckets": 24}
    response = await client.get(f"{BASE}/history", params=params, headers=await login_as("vic"))
    assert response.status_code == 200, response.text
    first, second = response.json()
    assert first == {
        "start": "2025-11-26T08:00:00Z",
        "end": "2025-11-26T09:00:00Z",
        "count": 2,
        "min": 9.5,
        "max": 10.25,
        "mean": 9.875,
        "replayed": False,
    }
    assert (second["start"], second["count"], second["max"]) == ("2025-11-26T09:00:00Z", 1, 21.5)


async def test_history_refuses_bad_requests_with_a_reason(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database
) -> None:
    await _seed(database)
    viewer = await login_as("vic")
    cases = [
        ({"start": DAY["end"], "end": DAY["start"]}, "start"),
        ({"end": DAY["start"]}, "start"),
        ({"start": "2025-11-26T08:00:00"}, "start"),  # no timezone
        ({"start": "yesterday"}, "start"),
        ({"buckets": 0}, "buckets"),
        ({"buckets": 2001}, "buckets"),
        ({"channel": "Not A Channel"}, "channel"),
        ({"channel": "nul\x00"}, "channel"),
    ]
    for change, field in cases:
        params = DAY | {"channel": "temp"} | change
        response = await client.get(f"{BASE}/history", params=params, headers=viewer)
        assert_rejected(response, 422, field)
    missing = await client.get(f"{BASE}/history", params=DAY, headers=viewer)
    assert_rejected(missing, 422, "channel")


async def test_unknown_and_malformed_devices(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database
) -> None:
    admin = await login_as("ada")
    for route, extra in [("channels", {}), ("history", {"channel": "t"}), ("telemetry.csv", {})]:
        for device_id, status in [("ghost", 404), ("x" * 65, 422)]:
            url = f"/api/v1/devices/{device_id}/{route}"
            response = await client.get(url, params=DAY | extra, headers=admin)
            assert_rejected(response, status, "device_id" if status == 422 else None)


async def test_csv_export_is_exact_ordered_and_audited(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database
) -> None:
    await _seed(database)
    admin = await login_as("ada")
    params = {"start": T0.isoformat(), "end": (T0 + timedelta(hours=1)).isoformat()}
    response = await client.get(f"{BASE}/telemetry.csv", params=params, headers=admin)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == (
        'attachment; filename="press-07_20251126T080000Z_20251126T090000Z.csv"'
    )
    assert list(csv.reader(response.text.splitlines())) == [
        ["ts", "stream", "seq", "channel", "value", "type", "replayed"],
        ["2025-11-26T08:00:00.000Z", "s1", "1", "temp", "9.5", "decimal", "false"],
        ["2025-11-26T08:00:05.000Z", "s2", "1", "door", "true", "boolean", "true"],
        ["2025-11-26T08:00:10.000Z", "s1", "2", "temp", "10.25", "decimal", "false"],
    ]  # 21.50 at 09:00 is the end instant: outside
    [entry] = await audit_entries(client, admin, action="telemetry.export")
    assert (entry["actor"], entry["target_id"]) == ("ada", DEVICE)
    assert entry["after"] == {
        "start": "2025-11-26T08:00:00+00:00",
        "end": "2025-11-26T09:00:00+00:00",
        "channels": None,
    }


async def test_csv_export_of_chosen_channels(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database
) -> None:
    await _seed(database)
    params = DAY | {"channel": ["temp"]}
    response = await client.get(
        f"{BASE}/telemetry.csv", params=params, headers=await login_as("ada")
    )
    values = [row[4] for row in csv.reader(response.text.splitlines())]
    assert values == ["value", "9.5", "10.25", "21.50"]


async def test_csv_export_needs_reports_read(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database
) -> None:
    """A Viewer reads history but may not export, and no export is audited for it."""
    await _seed(database)
    viewer, admin = await login_as("vic"), await login_as("ada")
    response = await client.get(f"{BASE}/telemetry.csv", params=DAY, headers=viewer)
    assert_rejected(response, 403)
    assert await audit_entries(client, admin, action="telemetry.export") == []


async def test_csv_export_refuses_a_bad_range(
    client: httpx.AsyncClient, login_as: LoginAs, database: Database
) -> None:
    await _seed(database)
    params = {"start": DAY["end"], "end": DAY["start"]}
    response = await client.get(
        f"{BASE}/telemetry.csv", params=params, headers=await login_as("ada")
    )
    assert_rejected(response, 422, "start")
