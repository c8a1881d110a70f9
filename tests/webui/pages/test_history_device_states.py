"""History and device pages in their states: empty, nothing in range, several channels,
filled from the database after a restart, and mistakes said in words."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from nicegui import ui
from nicegui.testing.user import User

from core.db.engine import Database
from core.protocol.telemetry import Batch, Sample
from core.services import device_configs
from core.services.actor import Actor
from core.services.telemetry import store
from tests.webui.conftest import ADMIN_PASSWORD, VIEWER_PASSWORD
from tests.webui.pages.test_live_pages import _register
from tests.webui.pages.test_login import signed_in

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

CONFIGURER = Actor(name="test", permissions=frozenset({"config:write", "devices:read"}))


async def _seed(database: Database, *, age_s: int = 0, count: int = 120) -> None:
    """kiln-1: ``count`` samples a second apart, ending ``age_s`` ago; temp in °C, door on/off."""
    await _register(database, "kiln-1")
    async with database.session() as session:
        await device_configs.update_desired(
            session, actor=CONFIGURER, device_id="kiln-1", changes={"units": {"temp": "°C"}}
        )
    now_ms = int(time.time() * 1000) - age_s * 1000
    samples = tuple(
        Sample(n, now_ms - (count - n) * 1000, {"temp": Decimal(20 + n % 5), "door": n % 30 < 10})
        for n in range(1, count + 1)
    )
    await store.store(database, [Batch("kiln-1", "s1", "live", samples)])


def _chart(user: User, marker: str) -> ui.echart:
    chart = user.find(marker=marker).elements.pop()
    assert isinstance(chart, ui.echart)
    return chart


async def test_history_without_samples_says_so(user: User, database: Database) -> None:
    await _register(database, "kiln-1")
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/devices/kiln-1/history")
    await user.should_see("This device has stored no samples yet", marker="no-history")
    await user.should_not_see(marker="history-chart")


async def test_history_opens_on_the_first_numeric_channel_with_its_unit(
    user: User, database: Database
) -> None:
    """ "door" comes first by name, but a boolean over an hour says little: temp is drawn."""
    await _seed(database)
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/kiln-1/history")
    await user.should_see("temp: 120 samples", marker="history-summary", retries=30)
    options = _chart(user, "history-chart").options
    assert [axis["name"] for axis in options["yAxis"]] == ["°C"]
    mean = next(s for s in options["series"] if s["name"] == "temp mean")
    assert len(mean["data"]) >= 16  # two minutes in 7.2 s buckets (an hour in 500)

    # Both channels together: temp on its °C axis, door on an On/Off axis on the right.
    user.find(marker="history-channel").elements.pop().value = ["temp", "door"]
    user.find(marker="history-show").click()
    await user.should_see("door: 120 samples", marker="history-summary", retries=30)
    options = _chart(user, "history-chart").options
    axes = options["yAxis"]
    assert axes[0]["name"] == "°C" and axes[1]["max"] == 1 and axes[1]["position"] == "right"
    names = {s["name"] for s in options["series"]}
    assert {"temp mean", "door mean", "door replayed"} <= names


async def test_history_says_when_the_range_is_empty(user: User, database: Database) -> None:
    """Samples three hours old: the last hour has none, and the page says what to do."""
    await _seed(database, age_s=3 * 3600)
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/devices/kiln-1/history")
    await user.should_see("No samples of temp from", marker="history-summary", retries=30)
    await user.should_see("Pick a longer range")
    user.find(marker="history-range").elements.pop().value = "Last 24 hours"
    user.find(marker="history-show").click()
    await user.should_see("temp: 120 samples", marker="history-summary", retries=30)


async def test_history_explains_a_backwards_custom_range(user: User, database: Database) -> None:
    await _seed(database)
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/kiln-1/history")
    user.find(marker="history-range").elements.pop().value = "Custom"
    user.find(marker="history-start").clear().type("2026-01-02 10:00")
    user.find(marker="history-end").clear().type("2026-01-01 10:00")
    user.find(marker="history-show").click()
    await user.should_see("From must be before To", retries=20)


async def test_device_charts_fill_from_the_database(user: User, database: Database) -> None:
    """Stored before the page opened and never seen by this server's hub (as after a
    restart): the charts and current values still show the last minutes."""
    await _seed(database)
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.open("/devices/kiln-1")
    await user.should_see(marker="value temp", retries=30)
    await user.should_not_see(marker="no-values")
    await user.should_see(marker="value door")  # On or Off, as its chart says
    door_value = user.find(marker="value door").elements.pop()
    assert isinstance(door_value, ui.label) and door_value.text in ("On", "Off")
    charts = {
        chart.options["title"]["text"]: chart
        for chart in user.find(ui.echart).elements
        if isinstance(chart, ui.echart)
    }
    assert len(charts["temp (°C)"].options["series"][0]["data"]) == 120
    door = charts["door"].options
    assert door["yAxis"]["max"] == 1 and door["series"][0]["step"] == "end"  # On/Off bands
    assert "areaStyle" in door["series"][0]


async def test_a_config_mistake_is_said_in_words(user: User, database: Database) -> None:
    await _register(database, "kiln-1")
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/kiln-1")
    user.find(marker="config-interval").clear().type("0.01")
    user.find(marker="config-save").click()
    await user.should_see(
        "Seconds between samples must be between 0.05 and 3600; 0.01 is too short.",
        marker="config-error",
        retries=20,
    )
    await user.should_not_see("interval_s")


async def test_the_export_holds_the_channels_drawn(user: User, database: Database) -> None:
    await _seed(database)
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/kiln-1/history")
    await user.should_see("temp: 120 samples", marker="history-summary", retries=30)
    user.find(marker="history-export").click()
    response = await user.download.next(timeout=5)
    assert response.status_code == 200, response.text
    channels = {line.split(",")[3] for line in response.text.splitlines()[1:]}
    assert channels == {"temp"}  # door is stored too, but not drawn
