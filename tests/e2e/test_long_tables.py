"""In a real browser: the fleet and device tables of 1,000 devices open fast and can be
searched, sorted, filtered and paged, with their headings in place."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from core.services import devices
from core.services.audit_checkpoints import keyed_database
from core.services.users import console_actor
from core.settings import Settings
from tests.e2e.conftest import ADMIN, ARTIFACTS
from tests.e2e.test_first_day import WAIT_S, _see, _sign_in, _type

FLEET_SIZE = 1000
KILNS = 10  # the search finds these among the presses
# A cold page of 1,000 devices on a loaded 2-core machine: the table builds only the rows
# on screen, so this is the page's usual build plus the rows' data, far under it.
OPENS_WITHIN_S = 6.0


async def _register_fleet(tmp_path: Path) -> None:
    """1,000 devices through the service layer in one transaction, as the CLI would write them."""
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'pp.db'}",
        signing_key_file=tmp_path / "data" / "server-signing-key.pem",
    )
    database = keyed_database(settings)
    shell = console_actor("test")
    try:
        async with database.session() as session:
            for n in range(1, FLEET_SIZE - KILNS + 1):
                await devices.create_device(
                    session, actor=shell, device_id=f"press-{n:04d}", name=f"Press {n}"
                )
            for n in range(1, KILNS + 1):
                await devices.create_device(
                    session, actor=shell, device_id=f"kiln-{n:02d}", name=f"Kiln {n}, hall B"
                )
    finally:
        await database.close()


def _until(driver: Any, condition: Any) -> None:
    """Wait for ``condition``; rows rebuilt under the test's feet are looked up again."""
    WebDriverWait(driver, WAIT_S, ignored_exceptions=(StaleElementReferenceException,)).until(
        condition
    )


def _showing(first: int, last: int, of: str) -> str:
    """What the table says under its rows: ``26`` en dash ``50 of 1,000 devices``."""
    return f"{first}\N{EN DASH}{last} of {of}"


def _part(driver: Any, table: str, part: str) -> Any:
    return driver.find_element(By.XPATH, f"//*[@data-table='{table}']//*[@data-part='{part}']")


def _count(driver: Any, table: str) -> str:
    return str(_part(driver, table, "count").text)


def _wait_count(driver: Any, table: str, text: str) -> None:
    try:
        _until(driver, lambda d: _count(d, table) == text)
    except TimeoutException:
        raise AssertionError(f"{table} says {_count(driver, table)!r}, not {text!r}") from None


def _first_ids(driver: Any, marker: str) -> list[str]:
    rows = driver.find_elements(By.XPATH, f"//*[@data-table='{marker}']//table/tbody/tr")
    return [row.find_element(By.XPATH, "./td[1]//a").text for row in rows]


def _search(driver: Any, noun: str, text: str) -> None:
    field = driver.find_element(By.XPATH, f"//input[@aria-label='Search {noun}']")
    field.send_keys(Keys.CONTROL, "a")  # clear() bypasses the input events Vue listens to
    field.send_keys(Keys.BACKSPACE)
    if text:
        field.send_keys(text)


def _page_to(driver: Any, table: str, button: str) -> None:
    """Click a pager button by what it shows: a page number, or ``keyboard_arrow_right`` (next)."""
    pages = _part(driver, table, "pages")
    pages.find_element(By.XPATH, f".//button[normalize-space(.)='{button}']").click()


def _sort_by(driver: Any, table: str, column: str) -> None:
    heading = f"//*[@data-table='{table}']//th[@data-column='{column}']/*"
    driver.find_element(By.XPATH, heading).click()


def _headings(driver: Any, marker: str) -> list[str]:
    cells = driver.find_elements(By.XPATH, f"//*[@data-table='{marker}']//table/thead//th")
    return [(cell.text.strip().splitlines() or [""])[0] for cell in cells]  # not the arrow


def test_a_thousand_devices_are_searched_sorted_filtered_and_paged(
    server: str, browser: Any, tmp_path: Path
) -> None:
    """Fleet and Devices with 1,000 devices: 25 rows a page, search narrows, sort and paging
    move, the status filter filters; both pages open within seconds. Then the forms: a new
    device's password has a copy button, and the user and role screens for the pictures."""
    asyncio.run(_register_fleet(tmp_path))
    _sign_in(browser, server, *ADMIN)

    started = time.monotonic()
    browser.get(f"{server}/fleet")
    _wait_count(browser, "fleet-table", _showing(1, 25, "1,000 devices"))
    opened_s = time.monotonic() - started
    assert opened_s < OPENS_WITHIN_S, f"/fleet with 1,000 devices took {opened_s:.1f} s"
    headings = _headings(browser, "fleet-table")
    for heading in ("Device", "Status", "Last seen", "Backlog", "Latest values", "Trend", "Sync"):
        assert heading in headings, headings
    assert _first_ids(browser, "fleet-table")[:2] == ["kiln-01", "kiln-02"]
    assert len(_first_ids(browser, "fleet-table")) == 25

    _search(browser, "devices", "kiln")
    _wait_count(browser, "fleet-table", _showing(1, 10, "10 devices"))
    assert _first_ids(browser, "fleet-table") == [f"kiln-{n:02d}" for n in range(1, 11)]
    _search(browser, "devices", "hall b kiln 7")  # no row says this: nothing matches
    _until(browser, lambda d: _part(d, "fleet-table", "empty").text == "No devices match.")
    _search(browser, "devices", "")
    _wait_count(browser, "fleet-table", _showing(1, 25, "1,000 devices"))

    _sort_by(browser, "fleet-table", "device")
    _until(
        browser, lambda d: _first_ids(d, "fleet-table")[:1] == ["press-0990"]
    )  # the table opened sorted by device: a click turns it round
    _page_to(browser, "fleet-table", "keyboard_arrow_right")
    _wait_count(browser, "fleet-table", _showing(26, 50, "1,000 devices"))
    assert _first_ids(browser, "fleet-table")[0] == "press-0965"
    browser.execute_script("window.scrollTo(0, 0)")  # the pager scrolled the headings away
    browser.save_screenshot(str(ARTIFACTS / "fleet-1000.png"))

    status = _part(browser, "fleet-table", "status")
    status.find_element(By.XPATH, ".//button[normalize-space(.)='Online']").click()
    _wait_count(browser, "fleet-table", "0 of 1,000 devices")  # none has connected
    status.find_element(By.XPATH, ".//button[normalize-space(.)='Offline']").click()
    _wait_count(browser, "fleet-table", _showing(1, 25, "1,000 devices"))

    started = time.monotonic()
    browser.get(f"{server}/devices")
    _wait_count(browser, "devices-table", _showing(1, 25, "1,000 devices"))
    opened_s = time.monotonic() - started
    assert opened_s < OPENS_WITHIN_S, f"/devices with 1,000 devices took {opened_s:.1f} s"
    assert _headings(browser, "devices-table")[:4] == ["Device", "Name", "Last seen", "Enabled"]
    _search(browser, "devices", "Kiln 3,")
    _wait_count(browser, "devices-table", _showing(1, 1, "1 device"))
    assert _first_ids(browser, "devices-table") == ["kiln-03"]
    _search(browser, "devices", "press-09")
    _wait_count(browser, "devices-table", _showing(1, 25, "91 devices"))  # press-0900 to press-0990
    _page_to(browser, "devices-table", "4")
    _wait_count(browser, "devices-table", _showing(76, 91, "91 devices"))
    assert _first_ids(browser, "devices-table")[-1] == "press-0990"
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(ARTIFACTS / "devices-1000.png"))

    _type(browser, "Device id", "bench-01")
    browser.find_element(By.XPATH, "//button[.//*[text()='Register']]").click()
    _see(browser, "Device 'bench-01' registered")
    browser.find_element(By.XPATH, "//button[@aria-label='Copy password']").click()
    _see(browser, "Password copied")
    browser.save_screenshot(str(ARTIFACTS / "device-credentials.png"))
    browser.find_element(By.XPATH, "//button[.//*[text()='Done']]").click()

    browser.get(f"{server}/users")
    _wait_count(browser, "users-table", _showing(1, 1, "1 user"))
    browser.find_element(By.XPATH, "//button[.//*[text()='Edit']]").click()
    _see(browser, "Leave empty to keep the current password")
    browser.save_screenshot(str(ARTIFACTS / "users-edit.png"))
    browser.get(f"{server}/roles")
    _wait_count(browser, "roles-table", _showing(1, 2, "2 roles"))
    browser.save_screenshot(str(ARTIFACTS / "roles.png"))
