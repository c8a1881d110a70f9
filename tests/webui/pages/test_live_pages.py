"""Fleet and device pages follow presence and the live hub without a reload."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from nicegui import app, ui
from nicegui.testing.user import User

from core.db.engine import Database
from core.protocol.messages import Heartbeat, Status
from core.protocol.station_config import ConfigReport
from core.protocol.telemetry import Batch, Sample
from core.services import device_configs, devices
from core.services.actor import Actor
from tests.webui.conftest import ADMIN_PASSWORD, VIEWER_PASSWORD
from tests.webui.pages.test_login import signed_in
from webui.backbone.server import Backbone
from webui.services import Services

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

SHELL = Actor(name="test", permissions=frozenset({"devices:write", "devices:read"}))
CONFIGURER = Actor(name="test", permissions=frozenset({"config:write", "devices:read"}))


async def _register(database: Database, *ids: str) -> None:
    async with database.session() as session:
        for device_id in ids:
            await devices.create_device(session, actor=SHELL, device_id=device_id, name=device_id)


def _backbone() -> Backbone:
    services: Services = app.state.services
    return services.backbone


def _batch(
    device_id: str, seq: int, origin: str = "live", age_s: int = 0, **values: object
) -> Batch:
    ts = int(time.time() * 1000) - age_s * 1000
    return Batch(device_id, "s1", origin, (Sample(seq, ts, values),))  # type: ignore[arg-type]


async def test_fleet_page_follows_presence_and_latest_values(
    user: User, database: Database
) -> None:
    """A device coming online, reporting values (with units, and a trend) and going offline
    shows without a reload."""
    await _register(database, "kiln-1", "kiln-2")
    async with database.session() as session:
        await device_configs.update_desired(
            session, actor=CONFIGURER, device_id="kiln-1", changes={"units": {"temp": "°C"}}
        )
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/fleet")
    await user.should_see(marker="fleet kiln-1")
    await user.should_see(content="not heard", retries=20, marker="status kiln-1")

    backbone = _backbone()
    await backbone.presence.on_status(Status("kiln-1", "online"))
    await backbone.presence.on_heartbeat(Heartbeat("kiln-1", interval_s=5, outbox=42))
    backbone.hub.on_commit([_batch("kiln-1", 1, age_s=2, temp=Decimal("20.75"), door=True)])
    backbone.hub.on_commit([_batch("kiln-1", 2, temp=Decimal("21.50"), door=True)])
    await user.should_see(content="online", retries=20, marker="status kiln-1")
    await user.should_see(content="42 queued", retries=20, marker="backlog kiln-1")
    nbsp = "\u00a0"  # a reading never wraps inside itself
    await user.should_see(content=f"temp{nbsp}21.50{nbsp}°C", retries=20, marker="latest kiln-1")
    await user.should_see(content=f"door{nbsp}On", retries=20, marker="latest kiln-1")
    backbone.hub.on_commit([_batch("kiln-1", 3, temp=Decimal("21.50"), door=False)])
    await user.should_see(content=f"door{nbsp}Off", retries=20, marker="latest kiln-1")
    await user.should_not_see(content="false", marker="latest kiln-1")
    await user.should_see(content="<polyline points=", retries=20, marker="trend kiln-1")

    await backbone.presence.on_status(Status("kiln-1", "offline", "lost"))
    await user.should_see(content="offline · lost", retries=20, marker="status kiln-1")
    await user.should_see(content="not heard", retries=20, marker="status kiln-2")


async def test_device_page_shows_values_charts_and_offline_history(
    user: User, database: Database
) -> None:
    """Values keep their scale and unit, charts get appended points, transitions are listed."""
    await _register(database, "kiln-1")
    async with database.session() as session:
        from core.db.models import DeviceConfig

        config = await session.get(DeviceConfig, "kiln-1")
        assert config is not None
        config.desired = {"units": {"temp": "°C"}}
    backbone = _backbone()
    backbone.hub.on_commit([_batch("kiln-1", 1, temp=Decimal("20.10"))])
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/kiln-1")
    await user.should_see(content="20.10 °C", retries=20, marker="value temp")

    await backbone.presence.on_status(Status("kiln-1", "online"))
    backbone.hub.on_commit([_batch("kiln-1", 2, temp=Decimal("21.50"), parts=7)])
    backbone.hub.on_commit([_batch("kiln-1", 3, "replay", age_s=60, temp=Decimal("19.00"))])
    await user.should_see(content="21.50 °C", retries=20, marker="value temp")
    await user.should_see(content="7", retries=20, marker="value parts")
    await user.should_see(content="online", retries=20, marker="device-status")
    assert "19.00" not in str(user.find(marker="value temp").elements.pop().text)  # older

    charts = [e for e in user.find(ui.echart).elements if isinstance(e, ui.echart)]
    titles = sorted(chart.options["title"]["text"] for chart in charts)
    assert titles == ["parts", "temp (°C)"]
    temp = next(c for c in charts if c.options["title"]["text"] == "temp (°C)")
    # The first point was drawn with the page; later ones are appended, never resent.
    assert temp.options["series"][0]["data"] == [[temp.options["series"][0]["data"][0][0], 20.1]]
    assert temp.options["series"][1]["data"] == []

    await backbone.presence.on_status(Status("kiln-1", "offline", "clean"))
    await user.should_see(content="offline · clean", retries=20, marker="device-status")
    await user.should_see(marker="offline-event clean")


async def test_an_admin_changes_the_configuration_and_sees_the_station_apply_it(
    user: User, database: Database
) -> None:
    """The form sends a new version; a bad value is refused in words; the report shows."""
    await _register(database, "kiln-1")
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/kiln-1")
    await user.should_see(content="Nothing asked yet", retries=20, marker="config-desired")
    await user.should_see(content="has not reported", marker="config-reported")

    user.find(marker="config-interval").type("0.5")
    user.find(marker="config-heartbeat").type("10")
    user.find(marker="config-save").click()
    await user.should_see(
        content="version 1: a sample every 0.5 s; a heartbeat every 10 s",
        retries=20,
        marker="config-desired",
    )
    user.find(marker="config-interval").clear().type("0.01")
    user.find(marker="config-save").click()
    words = "Seconds between samples must be between 0.05 and 3600; 0.01 is too short."
    await user.should_see(content=words, retries=20)
    await user.should_see(content="version 1:", marker="config-desired")  # nothing changed

    # The station applies it: its report is stored, its heartbeat names the version.
    backbone = _backbone()
    settings = {"interval_s": 0.5, "heartbeat_s": 10}
    await backbone.configs._on_report(ConfigReport("kiln-1", 1, settings, "applied", 1))
    await backbone.presence.on_heartbeat(Heartbeat("kiln-1", interval_s=10, config_version=1))
    await user.should_see(
        content="The station runs version 1", retries=40, marker="config-reported"
    )
    typed = user.find(marker="config-interval").elements.pop()
    assert isinstance(typed, ui.number) and typed.value == 0.01  # a reload keeps what is typed


async def test_a_viewer_sees_the_configuration_without_the_form(
    user: User, database: Database
) -> None:
    await _register(database, "kiln-1")
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/devices/kiln-1")
    await user.should_see(content="Nothing asked yet", retries=20, marker="config-desired")
    await user.should_not_see(marker="config-save")


async def test_unknown_device_page_says_so(user: User) -> None:
    """An id no device has gets a message, not a crash."""
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/devices/nope")
    await user.should_see(content="no device with id 'nope'", retries=20, marker="not-found")


async def test_every_page_shows_both_links(user: User) -> None:
    """The browser link badge and the broker link (disabled without a broker) are on pages."""
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/fleet")
    await user.should_see(marker="browser-link")
    await user.should_see(content="Broker: disabled", retries=20, marker="broker-link")
