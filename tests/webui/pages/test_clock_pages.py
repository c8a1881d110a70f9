"""The one clock on pages: the zone the browser's cookie names, or UTC once a person chose it."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from nicegui import app
from nicegui.testing.user import User

from core.protocol.telemetry import Batch, Sample
from core.services import devices
from core.services.actor import Actor
from tests.webui.conftest import VIEWER_PASSWORD
from tests.webui.pages.test_login import signed_in
from webui.components.browser_time import UTC_KEY, ZONE_COOKIE, named
from webui.services import Services

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

ADMIN = Actor(name="ada", permissions=frozenset({"devices:read", "devices:write"}))
TOKYO_ZONE = ZoneInfo("Asia/Tokyo")  # UTC+9 all year: never the test machine's zone


async def _kiln_with_a_sample() -> datetime:
    """kiln-1 with one sample heard now (as ingest announces it); the sample's time."""
    services: Services = app.state.services
    async with services.database.session() as session:
        await devices.create_device(session, actor=ADMIN, device_id="kiln-1")
    ts = int(time.time() * 1000)
    batch = Batch("kiln-1", "s1", "live", (Sample(1, ts, {"temp": Decimal("21.5")}),))
    services.backbone.ingest.commits.emit([batch])
    return datetime.fromtimestamp(ts / 1000, UTC)


async def test_times_read_in_the_zone_the_browser_named_then_in_utc_once_chosen(
    user: User,
) -> None:
    user.http_client.cookies.set(ZONE_COOKIE, "Asia%2FTokyo")  # as the page's script writes it
    await signed_in(user, "vic", VIEWER_PASSWORD)
    taken = await _kiln_with_a_sample()
    await user.open("/devices/kiln-1")
    await user.should_see("Times: Asia/Tokyo (JST)", marker="time-zone")
    await user.should_see(named(taken, TOKYO_ZONE), retries=40)  # the current value's time

    user.find(marker="utc-switch").click()
    assert app.storage.user[UTC_KEY] is True  # kept for the person, for every page
    await user.open("/devices/kiln-1")
    await user.should_see("Times: UTC", marker="time-zone")
    await user.should_see(named(taken, UTC), retries=40)
    await user.should_not_see("JST")

    user.find(marker="utc-switch").click()  # and back
    await user.open("/fleet")
    await user.should_see("Times: Asia/Tokyo (JST)", marker="time-zone")


async def test_a_zone_python_does_not_know_reads_as_utc_and_says_so(user: User) -> None:
    user.http_client.cookies.set(ZONE_COOKIE, "Mars%2FOlympus_Mons")
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/fleet")
    await user.should_see("Times: UTC", marker="time-zone")
