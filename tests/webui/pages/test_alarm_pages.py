"""Alarms show on the fleet and device pages as they are raised and cleared, without a reload."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from nicegui import app
from nicegui.testing.user import User

from core.protocol.telemetry import Batch, Sample
from core.services import device_configs, devices
from core.services.actor import Actor
from tests.webui.conftest import VIEWER_PASSWORD
from tests.webui.pages.test_login import signed_in
from webui.components.browser_time import named
from webui.services import Services

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

ADMIN = Actor(name="ada", permissions=frozenset({"devices:read", "devices:write", "config:write"}))
TOKYO = ZoneInfo("Asia/Tokyo")  # never the test machine's zone: UTC+9, no summer time


def _services() -> Services:
    services: Services = app.state.services
    return services


async def _kiln(settings: dict[str, Any]) -> None:
    """kiln-1, configured through the server's own database (its backbone hears of it)."""
    async with _services().database.session() as session:
        await devices.create_device(session, actor=ADMIN, device_id="kiln-1")
    async with _services().database.session() as session:
        await device_configs.update_desired(
            session, actor=ADMIN, device_id="kiln-1", changes=settings
        )


def _commit(seq: int, **values: object) -> int:
    """A stored kiln-1 sample, as ingest announces it; its time (ms) is returned."""
    ts = int(time.time() * 1000) + seq
    batch = Batch("kiln-1", "s1", "live", (Sample(seq, ts, values),))  # type: ignore[arg-type]
    _services().backbone.ingest.commits.emit([batch])
    return ts


async def test_the_fleet_counts_alarms_as_they_are_raised_and_cleared(user: User) -> None:
    await _kiln({"thresholds": {"temp": {"high": "80.0"}, "rpm": {"low": 100}}})
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/fleet")
    await user.should_see(marker="fleet kiln-1")
    await user.should_not_see(marker="alarms kiln-1")

    _commit(1, temp=Decimal("85.5"), rpm=50)
    await user.should_see(content="2 alarms", retries=40, marker="alarms kiln-1")
    _commit(2, temp=Decimal("80.0"), rpm=50)  # temp back on its threshold: inside
    await user.should_see(content="1 alarm", retries=40, marker="alarms kiln-1")
    _commit(3, temp=Decimal("79.9"), rpm=100)
    await user.should_not_see(marker="alarms kiln-1", retries=40)


async def test_the_device_page_lists_active_and_cleared_alarms_in_the_browsers_zone(
    user: User,
) -> None:
    await _kiln({"units": {"temp": "°C"}, "thresholds": {"temp": {"high": "80.0"}}})
    user.javascript_rules[re.compile(r".*resolvedOptions\(\)\.timeZone")] = lambda _: "Asia/Tokyo"
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/devices/kiln-1")
    await user.should_see(marker="device-status")
    await user.should_not_see(marker="alarms")  # nothing raised yet: no card

    raised = _commit(1, temp=Decimal("85.50"))
    since = named(datetime.fromtimestamp(raised / 1000, UTC), TOKYO)
    assert "JST" in since
    await user.should_see(
        content=f"temp above its high of 80.0 °C: 85.50 °C · since {since}",
        retries=40,
        marker="alarm temp high",
    )
    _commit(2, temp=Decimal("79.25"))
    await user.should_see(content="back at 79.25 °C", retries=40, marker="cleared temp high")
    await user.should_see(content="No active alarms.", marker="no-alarms")
    await user.should_not_see(marker="alarm temp high")
