"""The overview in a real browser: its counts follow a station coming and going, no reload."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.demo.test_launch import STATIONS, Demo
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_first_day import WAIT_S, _see, _sign_in
from tests.e2e.test_live_dashboard import (
    BROKER,
    PASSWORD,
    _register_station,
    _start_station,
    _text,
)

# Far from UTC. The overview names the zone the header names (one clock); that the header
# follows the browser is test_one_clock.py's to show.
ZONE = "America/New_York"


def _alarm_on_any_temperature(url: str, device_id: str) -> None:
    """A high threshold of 0 °C on the device's temp: its first sample raises an alarm."""
    login = httpx.post(
        f"{url}/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}, timeout=30
    )
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    config = f"{url}/api/v1/devices/{device_id}/config"
    etag = httpx.get(config, headers=headers, timeout=30).headers["etag"]
    settings = {"units": {"temp": "°C"}, "thresholds": {"temp": {"high": "0"}}}
    changed = httpx.patch(config, json=settings, headers=headers | {"If-Match": etag}, timeout=30)
    assert changed.status_code == 200, changed.text


def _page_zone(driver: Any) -> str:
    """The zone the header says every time on the page reads in: ``EST`` (or ``UTC``)."""
    chip = driver.find_element(By.XPATH, "//*[starts-with(text(), 'Times: ')]").text
    found = re.fullmatch(r"Times: (?:.+ \((\w+)\)|(UTC))", chip)
    assert found, chip
    return found[1] or found[2]


def _counts(driver: Any) -> tuple[str, str]:
    return _text(driver, "[data-count=online]"), _text(driver, "[data-count=offline]")


def test_the_overview_counts_a_station_coming_online_and_going_offline(
    tmp_path: Path, browser: Any
) -> None:
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ZONE})
    demo = Demo(tmp_path / "data", PP_ADMIN_PASSWORD=PASSWORD)
    agent: subprocess.Popen[bytes] | None = None
    try:
        demo.wait_until_linked()
        found = BROKER.search(demo.output())
        assert found, demo.output()
        password = _register_station(demo.url, "e2e-1")
        _alarm_on_any_temperature(demo.url, "e2e-1")

        _sign_in(browser, demo.url, "admin", PASSWORD)
        browser.get(f"{demo.url}/")
        wait = WebDriverWait(browser, WAIT_S * 2)  # the demo's stations start beside the page
        demo_online = str(len(STATIONS))  # the demo's simulated stations
        wait.until(lambda d: _counts(d)[0] == demo_online)
        offline = int(_counts(browser)[1])  # e2e-1 among them: registered, not heard
        assert offline >= 1
        link = browser.find_element(By.XPATH, "//a[.//*[@data-count='online']]")
        assert link.get_attribute("href").endswith("/fleet?status=online")
        browser.execute_script("window.ppStillThisPage = true")  # gone if the page reloads

        agent = _start_station(f"mqtt://{found[1]}:{found[2]}", password, tmp_path / "station")
        wait.until(lambda d: _counts(d) == (str(len(STATIONS) + 1), str(offline - 1)))
        wait.until(lambda d: _text(d, "[data-count=alarms]") == "1")
        _see(browser, "temp above its high of 0 °C")
        alarm = browser.find_element(By.XPATH, "//*[contains(text(), 'above its high')]").text
        assert re.search(rf"°C · since \d\d:\d\d:\d\d {_page_zone(browser)}$", alarm), alarm

        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=20)
        wait.until(lambda d: _counts(d) == (demo_online, str(offline)))
        _see(browser, "stopped cleanly")
        event = browser.find_element(By.XPATH, "//*[contains(text(), 'stopped cleanly')]").text
        assert re.search(rf"since \d\d:\d\d:\d\d {_page_zone(browser)}, still offline", event)
        assert browser.execute_script("return window.ppStillThisPage === true")
        browser.save_screenshot(str(ARTIFACTS / "overview.png"))
    finally:
        if agent is not None and agent.poll() is None:
            agent.kill()
        demo.stop(signal.SIGINT, group=True)
