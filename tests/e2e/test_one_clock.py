"""One clock in a real Chromium far from UTC: header, chart and values agree and name the zone."""

from __future__ import annotations

import re
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.demo.test_launch import Demo
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_first_day import WAIT_S, _see, _sign_in

PASSWORD = "e2e-admin-password-1"
NEW_YORK = ZoneInfo("America/New_York")  # 5 h behind UTC in winter, 4 in summer
CLOCK = re.compile(r"(\d\d):(\d\d):(\d\d) ([A-Z]{3,4})")
# The x axis' labels as ECharts lays them out (the canvas has no text to read), its title,
# and the newest point drawn.
AXIS = """
const chart = getElement(arguments[0]).chart;
const axis = chart.getModel().getComponent('xAxis', 0);
const newest = Math.max(...chart.getOption().series.flatMap((s) => s.data.map((p) => p[0])));
return {labels: axis.axis.getViewLabels().map((l) => [l.tick.value, l.formattedLabel]),
        name: axis.get('name'), newest: newest};
"""


def _clock_near_now(text: str, zone: ZoneInfo, abbreviation: str) -> datetime:
    """The ``HH:MM:SS ZZZ`` time in ``text``: named ``abbreviation``, within minutes of now."""
    found = CLOCK.search(text)
    assert found, text
    assert found[4] == abbreviation, text
    now = datetime.now(zone)
    at = now.replace(hour=int(found[1]), minute=int(found[2]), second=int(found[3]))
    assert abs(at - now) < timedelta(minutes=10), f"{text!r} is not {zone} now ({now:%H:%M})"
    return at


def _chart_agrees(browser: Any, zone: ZoneInfo, abbreviation: str, current: datetime) -> None:
    """The chart's ticks read in ``zone``, it is titled by the zone, its newest point is now."""
    chart_id = browser.find_element(By.CSS_SELECTOR, ".nicegui-echart").get_attribute("id")
    drawn = browser.execute_script(AXIS, chart_id[1:])  # NiceGUI's ids are c<number>
    assert drawn["name"] == abbreviation
    assert drawn["labels"], drawn
    for tick_ms, label in drawn["labels"]:
        local = datetime.fromtimestamp(tick_ms / 1000, UTC).astimezone(zone)
        assert label in (f"{local:%H:%M}", f"{local:%H:%M:%S}", f"{local:%m-%d}"), drawn
    newest = datetime.fromtimestamp(drawn["newest"] / 1000, UTC).astimezone(zone)
    assert abs(newest - current) < timedelta(seconds=30), (newest, current)


def _header_times(browser: Any) -> tuple[str, str]:
    """The two link badges: since when the browser and the broker are connected."""
    badge = WebDriverWait(browser, WAIT_S).until(
        lambda d: CLOCK.search(t := d.find_element(By.ID, "pp-browser-link").text) and t
    )  # live.js writes it once the socket is up
    broker = browser.find_element(By.XPATH, "//header//*[starts-with(text(),'Broker:')]").text
    return str(badge), str(broker)


def _open_clock_menu_and_choose_utc(browser: Any) -> None:
    wait = WebDriverWait(browser, WAIT_S)
    wait.until(
        ec.element_to_be_clickable((By.XPATH, "//button[.//*[starts-with(text(),'Times:')]]"))
    ).click()
    switch = wait.until(ec.element_to_be_clickable((By.XPATH, "//*[text()='Show times in UTC']")))
    wait.until(  # the menu's fade-in done, for the picture
        lambda d: d.execute_script(
            "const m = document.querySelector('.q-menu');"
            "return m && getComputedStyle(m).opacity === '1'"
        )
    )
    browser.save_screenshot(str(ARTIFACTS / "e2e-clock-menu.png"))
    switch.click()


def test_times_read_in_new_york_named_and_utc_when_chosen(tmp_path: Path, browser: Any) -> None:
    """Header, chart axis and current values agree in the browser's zone; then all in UTC."""
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
    demo = Demo(tmp_path / "data", PP_ADMIN_PASSWORD=PASSWORD)
    try:
        demo.wait_until_linked()
        assert (
            browser.execute_script("return Intl.DateTimeFormat().resolvedOptions().timeZone")
            == "America/New_York"
        )
        est = datetime.now(NEW_YORK).tzname() or ""
        _sign_in(browser, demo.url, "admin", PASSWORD)
        browser.get(f"{demo.url}/devices/press-01")
        _see(browser, f"Times: America/New York ({est})")  # the zone, named once for the page
        _see(browser, "Browser: connected since")
        _see(browser, "Broker: connected since")
        wait = WebDriverWait(browser, WAIT_S)
        at = wait.until(
            lambda d: (
                d.find_element(By.XPATH, "//*[@data-value='temp']/following-sibling::*[1]").text
            )
        )

        browser_since, broker_since = _header_times(browser)
        _clock_near_now(browser_since, NEW_YORK, est)
        _clock_near_now(broker_since, NEW_YORK, est)
        current = _clock_near_now(at, NEW_YORK, est)
        _chart_agrees(browser, NEW_YORK, est, current)
        browser.save_screenshot(str(ARTIFACTS / "e2e-clock-new-york.png"))

        _open_clock_menu_and_choose_utc(browser)
        _see(browser, "Times: UTC")  # the page was built anew, every time in UTC
        _see(browser, "Broker: connected since")
        at = wait.until(
            lambda d: (
                d.find_element(By.XPATH, "//*[@data-value='temp']/following-sibling::*[1]").text
            )
        )
        browser_since, broker_since = _header_times(browser)
        _clock_near_now(browser_since, ZoneInfo("UTC"), "UTC")
        _clock_near_now(broker_since, ZoneInfo("UTC"), "UTC")
        current = _clock_near_now(at, ZoneInfo("UTC"), "UTC")
        _chart_agrees(browser, ZoneInfo("UTC"), "UTC", current)
        browser.save_screenshot(str(ARTIFACTS / "e2e-clock-utc.png"))
        browser.get(f"{demo.url}/fleet")  # the choice is the person's, not the page's
        _see(browser, "Times: UTC")
    finally:
        demo.stop(signal.SIGINT, group=True)
