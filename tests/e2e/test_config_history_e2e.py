"""A device's configuration history in a real browser: times in its zone, a rollback clicked."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import ADMIN, ARTIFACTS
from tests.e2e.test_first_day import WAIT_S, _see, _sign_in

EDITS = [{"interval_s": 1}, {"interval_s": 2, "units": {"rpm": "1/min"}}, {"heartbeat_s": 5}]


def _configured(server: str) -> None:
    """press-1 with three versions, made through the API as a script would."""
    with httpx.Client(base_url=server, timeout=30) as api:
        login = api.post("/api/v1/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert api.post("/api/v1/devices", json={"id": "press-1"}, headers=auth).status_code == 201
        for version, changes in enumerate(EDITS):
            etag = {"If-Match": f'"{version}"'}
            changed = api.patch("/api/v1/devices/press-1/config", json=changes, headers=auth | etag)
            assert changed.status_code == 200, changed.text


def test_history_reads_in_the_browsers_zone_and_rolls_back(server: str, browser: Any) -> None:
    _configured(server)
    _sign_in(browser, server, *ADMIN)
    browser.get(f"{server}/devices/press-1")
    _see(browser, "units.rpm: added 1/min")
    zone = browser.execute_script("return Intl.DateTimeFormat().resolvedOptions().timeZone")
    named = datetime.now(ZoneInfo(zone)).tzname()
    _see(browser, f"{named} · {ADMIN[0]} · edited")  # the browser's zone, named

    browser.find_element(By.XPATH, "//button[.//*[text()='Roll back to this']]").click()
    confirm = WebDriverWait(browser, WAIT_S).until(
        ec.element_to_be_clickable((By.XPATH, "//button[.//*[text()='Roll back']]"))
    )
    _see(browser, "This makes version 4")
    browser.save_screenshot(str(ARTIFACTS / "e2e-config-rollback-dialog.png"))
    confirm.click()
    _see(browser, "Asked: version 4")
    _see(browser, f"{ADMIN[0]} · rollback to v2")
    browser.save_screenshot(str(ARTIFACTS / "e2e-config-history.png"))
