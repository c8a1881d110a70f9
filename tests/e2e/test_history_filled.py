"""History and device pages open filled from the database, in a real Chromium.

The samples are written to the server's database by this test, never through its ingest:
the server's live hub has not seen them, exactly as after a restart, when the hub is empty
and the last minutes are only in the database.
"""

from __future__ import annotations

import asyncio
import math
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from core.db.engine import Database
from core.protocol.telemetry import Batch, Sample
from core.services.telemetry import store
from tests.e2e.conftest import ADMIN, ARTIFACTS
from tests.e2e.test_first_day import WAIT_S, _see, _sign_in

DEVICE = "kiln-7"
SAMPLES = 3000  # 50 minutes at 1 Hz: inside history's hour, past the device page's ten
LIVE_WINDOW = 600  # the device page's ten minutes at 1 Hz


def _register_with_units(url: str) -> None:
    """The device, and °C for its temp, through the API as the admin."""
    login = httpx.post(
        f"{url}/api/v1/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]}, timeout=30
    )
    login.raise_for_status()
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    made = httpx.post(
        f"{url}/api/v1/devices", json={"id": DEVICE, "name": "Kiln 7"}, headers=headers, timeout=30
    )
    assert made.status_code == 201, made.text
    config = f"{url}/api/v1/devices/{DEVICE}/config"
    etag = httpx.get(config, headers=headers, timeout=30).headers["etag"]
    changed = httpx.patch(
        config, json={"units": {"temp": "°C"}}, headers=headers | {"If-Match": etag}, timeout=30
    )
    assert changed.status_code == 200, changed.text


def _temperature(n: int) -> Decimal:
    """A kiln warming and cooling over the hour, with a little noise: a readable picture."""
    return Decimal(f"{205 + 12 * math.sin(n / 500) + (n * 7919 % 13) / 10:.1f}")


async def _store_samples(database_file: Path) -> None:
    database = Database(f"sqlite:///{database_file}")
    now_ms = int(time.time() * 1000)
    samples = tuple(
        Sample(
            n,
            now_ms - (SAMPLES - n) * 1000,
            {"door": n % 600 < 200, "temp": _temperature(n)},
        )
        for n in range(1, SAMPLES + 1)
    )
    try:
        await store.store(database, [Batch(DEVICE, "s1", "live", samples)])
    finally:
        await database.engine.dispose()


# The drawn options of the chart titled arguments[0] ("": the untitled history chart).
_FIND = """
    for (const el of document.querySelectorAll('.nicegui-echart')) {
      const option = getElement(el)?.chart?.getOption();
      const text = (option?.title || [])[0]?.text || '';
      if (option && text === arguments[0]) return option;
    }
    return null;
"""


def _points(driver: Any, title: str) -> int:
    """How many points the chart titled ``title`` draws in its first series (-1: no chart)."""
    count: int = driver.execute_script(
        f"const option = (() => {{ {_FIND} }})();"
        "return option ? option.series[0].data.length : -1;",
        title,
    )
    return count


def _axis_name(driver: Any) -> str:
    """The history chart's first y axis name, as drawn."""
    name: str = driver.execute_script(f"return (() => {{ {_FIND} }})().yAxis[0].name;", "")
    return name


def test_history_and_device_pages_open_filled(server: str, browser: Any, tmp_path: Path) -> None:
    """No click and no live station: the stored minutes are drawn, with their units."""
    _register_with_units(server)
    asyncio.run(_store_samples(tmp_path / "pp.db"))
    wait = WebDriverWait(browser, WAIT_S)
    _sign_in(browser, server, *ADMIN)

    browser.get(f"{server}/devices/{DEVICE}/history")
    _see(browser, f"temp: {SAMPLES:,} samples")
    wait.until(lambda d: _points(d, "") > 30)  # an hour in 500 buckets: 7.2 s each
    assert _axis_name(browser) == "°C"
    _see(browser, "temp (°C)")  # the channel picker, its unit beside it
    browser.save_screenshot(str(ARTIFACTS / "history-opened.png"))

    # A second channel beside the first: door, a boolean, on its own On/Off axis.
    browser.find_element(By.XPATH, "//*[@aria-label='Channels']").click()
    wait.until(lambda d: d.find_elements(By.XPATH, "//*[text()='door (on/off)']"))[0].click()
    ActionChains(browser).send_keys(Keys.ESCAPE).perform()
    browser.find_element(By.XPATH, "//*[text()='Show']").click()
    _see(browser, f"door: {SAMPLES:,} samples")
    browser.save_screenshot(str(ARTIFACTS / "history-two-channels.png"))

    browser.get(f"{server}/devices/{DEVICE}")
    # The last ten minutes: about 600 samples (fewer by the seconds since they were stored).
    wait.until(lambda d: LIVE_WINDOW - 60 < _points(d, "temp (°C)") <= LIVE_WINDOW)
    wait.until(lambda d: LIVE_WINDOW - 60 < _points(d, "door") <= LIVE_WINDOW)
    _see(browser, "°C")  # the current value, from the database too
    browser.save_screenshot(str(ARTIFACTS / "device-filled.png"))

    # Hovering the legend's "replayed" entry says what replayed means.
    chart = browser.find_elements(By.CSS_SELECTOR, ".nicegui-echart")[0]
    width, height = chart.size["width"], chart.size["height"]
    ActionChains(browser).move_to_element_with_offset(
        chart, width // 2 - 50, -height // 2 + 8
    ).perform()
    _see(browser, "Replayed: samples the station stored while it could not send them")
    browser.save_screenshot(str(ARTIFACTS / "device-replayed-hint.png"))
