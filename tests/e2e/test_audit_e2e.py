"""The audit page in a real Chromium: changes in words, wrapped; names linked; search narrows."""

from __future__ import annotations

import re
from typing import Any

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import ADMIN, ARTIFACTS
from tests.e2e.test_first_day import WAIT_S, _see, _sign_in, _type

DEVICE = "kiln-7"
# Text no audit cell may show: Python's values and reprs, or an id of 8-4-… hex (a UUID).
RAW = re.compile(r"\bNone\b|\bTrue\b|\bFalse\b|\{'|'\}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-")


def _history(url: str) -> None:
    """A device made, renamed and given a unit, through the API as the admin."""
    login = httpx.post(
        f"{url}/api/v1/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]}, timeout=30
    )
    login.raise_for_status()
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    made = httpx.post(
        f"{url}/api/v1/devices", json={"id": DEVICE, "name": "Kiln"}, headers=headers, timeout=30
    )
    assert made.status_code == 201, made.text
    renamed = httpx.patch(
        f"{url}/api/v1/devices/{DEVICE}", json={"name": "Kiln 7"}, headers=headers, timeout=30
    )
    assert renamed.status_code == 200, renamed.text
    config = f"{url}/api/v1/devices/{DEVICE}/config"
    etag = httpx.get(config, headers=headers, timeout=30).headers["etag"]
    changed = httpx.patch(
        config, json={"units": {"temp": "°C"}}, headers=headers | {"If-Match": etag}, timeout=30
    )
    assert changed.status_code == 200, changed.text


def _cells(driver: Any, column: str) -> list[Any]:
    found: list[Any] = driver.find_elements(By.CSS_SELECTOR, f"tbody td.q-td:nth-child({column})")
    return found


def _rows(driver: Any) -> int:
    return len(driver.find_elements(By.CSS_SELECTOR, "tbody tr"))


def test_the_audit_page_reads_in_words_links_names_and_narrows(server: str, browser: Any) -> None:
    _history(server)
    browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
    wait = WebDriverWait(browser, WAIT_S)
    _sign_in(browser, server, *ADMIN)
    browser.get(f"{server}/audit")
    _see(browser, "name: Kiln → Kiln 7")
    wait.until(lambda d: _rows(d) >= 4)
    _see(browser, "units: temp: °C")

    link = browser.find_element(By.XPATH, f"//a[@href='/devices/{DEVICE}']")
    assert link.text == "Kiln 7 (kiln-7)"
    table = browser.find_element(By.CSS_SELECTOR, ".q-table").text
    assert not RAW.search(table), table
    assert re.search(r"\d{2}:\d{2}:\d{2} E[SD]T", table), table  # times in the browser's zone
    for cell in _cells(browser, "5"):  # the Change column: wrapped, nothing cut off
        fits = browser.execute_script(
            "return arguments[0].scrollWidth <= arguments[0].clientWidth", cell
        )
        assert fits, cell.text
    before = _rows(browser)
    browser.save_screenshot(str(ARTIFACTS / "audit-log.png"))

    _type(browser, "Search", "units")
    wait.until(lambda d: _rows(d) == 1)
    assert before > 1
    _see(browser, "units: temp: °C")
    browser.save_screenshot(str(ARTIFACTS / "audit-log-search.png"))

    # The page's export, as its download asks for it: the sign-in cookie, the same filter.
    exported: str = browser.execute_async_script(
        "fetch('/audit/export.csv?q=units').then(r => r.text()).then(arguments[0])"
    )
    header, row, *rest = exported.splitlines()
    assert header.startswith("id,at,actor,actor_name,action"), header
    assert ",device.config," in row and "+00:00" in row and "Kiln 7 (kiln-7)" in row, row
    assert rest == []
