"""Thresholds through the API: part of the configuration, checked, and watched at once."""

from __future__ import annotations

import time
from decimal import Decimal

import httpx
import pytest
from nicegui import app

from core.protocol.telemetry import Batch, Sample
from tests.mqtt.broker import eventually
from tests.webui.conftest import LoginAs
from webui.services import Services

pytestmark = pytest.mark.backends("one")

URL = "/api/v1/devices/press-07/config"


async def test_thresholds_are_set_checked_and_alarmed_on(
    client: httpx.AsyncClient, login_as: LoginAs
) -> None:
    admin = await login_as("ada")
    await client.post("/api/v1/devices", json={"id": "press-07"}, headers=admin)
    anyway = admin | {"If-Match": "*"}
    thresholds = {"temp": {"low": 10, "high": "80.50"}, "rpm": {"high": 9000.5}}
    changed = await client.patch(URL, json={"thresholds": thresholds}, headers=anyway)
    assert changed.status_code == 200, changed.text
    assert changed.json()["desired"] == {"thresholds": thresholds}  # as given: "80.50" stays
    for bad, reason in [
        ({"temp": {"low": 90, "high": 80}}, "above its high"),
        ({"temp": {"high": "hot"}}, "must be a number"),
        ({"temp": {"high": True}}, "thresholds"),
        ({"temp": {"middle": 5}}, "thresholds"),
        ({"Temp Sensor": {"high": 5}}, "bad channel name"),
    ]:
        refused = await client.patch(URL, json={"thresholds": bad}, headers=anyway)
        assert refused.status_code == 422 and reason in refused.text, refused.text
    assert (await client.get(URL, headers=admin)).json()["desired_version"] == 1

    # The server watches them from the moment they are stored.
    services: Services = app.state.services
    alarms = services.backbone.alarms
    sample = Sample(1, int(time.time() * 1000), {"temp": Decimal("80.51")})
    services.backbone.ingest.commits.emit([Batch("press-07", "s1", "live", (sample,))])
    await eventually(lambda: alarms.count("press-07") == 1)
    removed = await client.patch(URL, json={"thresholds": None}, headers=anyway)
    assert removed.json()["desired"] == {}
    await eventually(lambda: alarms.count("press-07") == 0)
