"""The overview's alarm, backlog and conflict cards open the fleet narrowed to the devices
they count, with the filter chosen in sight."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from nicegui import app, ui
from nicegui.testing.user import User

from core.db.engine import Database
from core.protocol.messages import Heartbeat, Status
from core.protocol.telemetry import Batch, Sample
from core.services import device_configs, devices
from core.services.actor import Actor
from tests.webui.conftest import VIEWER_PASSWORD
from tests.webui.pages.test_login import signed_in
from tests.webui.pages.test_tables import EN, _rows
from tests.webui.sync_data import seed
from webui.backbone.fleet_summary import BACKLOG_FROM
from webui.backbone.identity import Sighting
from webui.services import Services

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

SHELL = Actor(name="ada", permissions=frozenset({"devices:read", "devices:write", "config:write"}))
LIVE = 30  # retries of 0.1 s: the overview's tick and glance, the fleet's re-filter each second
# Each card, the devices it counts (by id, as the fleet sorts them) and the filter it opens.
CARDS = {
    "alarms": (["hot-1"], "alarm", "Alarms"),
    "backlog": (["queued-1"], "backlog", "Backlog"),
    "conflicts": (["press-07", "shared-1"], "conflict", "Conflict"),  # sync, then identity
}


def _services() -> Services:
    services: Services = app.state.services
    return services


async def test_each_overview_card_opens_the_fleet_with_exactly_its_devices(
    user: User, database: Database
) -> None:
    await seed(database)  # press-07: 2 sync conflicts; lathe-1 and kiln-3: none
    async with database.session() as session:
        for device_id in ("hot-1", "queued-1", "calm-1", "shared-1"):
            await devices.create_device(session, actor=SHELL, device_id=device_id)
    async with _services().database.session() as session:  # the backbone hears of it
        await device_configs.update_desired(
            session,
            actor=SHELL,
            device_id="hot-1",
            changes={"thresholds": {"temp": {"high": "80.0"}}},
        )
    backbone = _services().backbone
    await backbone.presence.on_status(Status("hot-1", "online"))
    await backbone.presence.on_heartbeat(Heartbeat("queued-1", interval_s=5, outbox=BACKLOG_FROM))
    await backbone.presence.on_heartbeat(Heartbeat("calm-1", interval_s=5, outbox=BACKLOG_FROM - 1))
    now = datetime.now(UTC)
    for n, stream in enumerate(("a1" * 16, "b2" * 16, "a1" * 16)):  # two stations take turns
        backbone.identity.seen(Sighting("shared-1", stream, now + timedelta(milliseconds=n)))

    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/")
    sample = Sample(1, int(time.time() * 1000), {"temp": Decimal("85.5")})
    backbone.ingest.commits.emit([Batch("hot-1", "s1", "live", (sample,))])
    await backbone.alarms.written()
    links: dict[str, str] = {}
    for key, (expected, _, _) in CARDS.items():
        await user.should_see(content=str(len(expected)), retries=LIVE, marker=f"number {key}")
        links[key] = user.find(marker=f"count {key}").elements.pop().props["href"]

    for key, (expected, choice, label) in CARDS.items():
        await user.open(links[key])
        count = f"1{EN}{len(expected)} of {len(expected)} device"
        await user.should_see(content=count, retries=LIVE, marker="fleet-table-count")
        assert _rows(user, "fleet") == expected, key
        toggle = user.find(marker="fleet-status").elements.pop()
        assert isinstance(toggle, ui.toggle)
        assert (toggle.value, toggle.options[toggle.value]) == (choice, label)  # in sight

    toggle.value = "all"  # the filter taken off: all 7 devices again
    await user.should_see(content=f"1{EN}7 of 7 devices", marker="fleet-table-count")
