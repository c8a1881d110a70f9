"""In a real browser: a station's sync state on the fleet and device pages, and the conflict
log, in words and in the browser's zone, nothing cut off, no id and no password hash shown.

The fleet and the conflicts are made through the owner modules in the server's database
(tests/webui/sync_data.py), as the sync wire and inbox would make them.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By

from core.services.audit_checkpoints import keyed_database
from core.settings import Settings
from tests.e2e.conftest import ADMIN, ARTIFACTS
from tests.e2e.servers import environment, http_server
from tests.e2e.test_first_day import _see, _sign_in
from tests.webui.sync_data import BEHIND, Seeded, seed

ZONE = "Europe/Berlin"  # the browser's, never the server's (UTC here): CET or CEST on the page


async def _seed(settings: Settings) -> Seeded:
    database = keyed_database(settings)
    try:
        return await seed(database)
    finally:
        await database.close()


def _cut_off(browser: Any, within: Any) -> list[str]:
    """Texts whose element is narrower than its content (clipped or truncated)."""
    script = (
        "return Array.from(arguments[0].querySelectorAll('*'))"
        ".filter(e => e.children.length === 0 && e.textContent.trim()"
        " && e.scrollWidth > e.clientWidth + 1).map(e => e.textContent.trim())"
    )
    found: list[str] = browser.execute_script(script, within)
    return found


def _fits(browser: Any) -> bool:
    """The page fits the window's width (nothing pushed off to the right)."""
    script = "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    return bool(browser.execute_script(script))


def test_sync_state_and_conflicts_read_in_words(tmp_path: Path, browser: Any) -> None:
    with http_server(tmp_path) as server:
        env = environment(tmp_path)
        settings = Settings(
            database_url=env["PP_DATABASE_URL"],
            mqtt_url="",
            signing_key_file=Path(env["PP_SIGNING_KEY_FILE"]),
        )
        seeded = asyncio.run(_seed(settings))
        browser.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": ZONE})
        browser.set_window_size(1280, 900)
        _sign_in(browser, server.url, *ADMIN)

        browser.get(f"{server.url}/devices/press-07")
        _see(browser, f"Sync: {BEHIND} changes behind")
        _see(browser, "2 edits waiting")
        _see(browser, "2 conflicts")
        _see(browser, "last sync")
        time.sleep(2.5)  # the watch's first pull has asked the browser's zone
        _see(browser, " CE")  # CET or CEST: the browser's zone, named
        line = browser.find_element(By.XPATH, "//*[starts-with(text(), 'Sync: ')]/..")
        line.screenshot(str(ARTIFACTS / "sync-device.png"))
        browser.save_screenshot(str(ARTIFACTS / "sync-device-page.png"))
        assert _cut_off(browser, line) == [] and _fits(browser)
        assert "UTC" not in line.text, line.text

        browser.get(f"{server.url}/fleet")
        _see(browser, f"{BEHIND} changes behind")
        _see(browser, "never synced")
        _see(browser, "up to date")
        time.sleep(2.5)
        main = browser.find_element(By.TAG_NAME, "main")
        browser.save_screenshot(str(ARTIFACTS / "sync-fleet.png"))
        assert _cut_off(browser, main) == [] and _fits(browser)

        browser.get(f"{server.url}/sync/conflicts")
        _see(browser, "4 conflicts, newest first")
        _see(browser, "olga's role Admin")
        _see(browser, "by olga at press-07")
        time.sleep(1)  # the zone asked once the page connected: times redrawn in it
        _see(browser, " CE")
        browser.save_screenshot(str(ARTIFACTS / "sync-conflicts.png"))
        main = browser.find_element(By.TAG_NAME, "main")
        text = main.text
        assert "password changed" in text
        assert "$argon2" not in text and seeded.olga_id not in text
        assert not [h for h in seeded.hashes if h in text]
        assert "{" not in text and "None" not in text, text
        assert _cut_off(browser, main) == [] and _fits(browser)
