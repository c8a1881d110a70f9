"""In a real browser: quarantined samples in words, hostile raw values shown as text (never
run), a long payload clipped in its row and whole in its dialog.

The samples go through the real parser and store into the server's database, as a station's
message would through ingest.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from core.protocol.telemetry import Batch, parse_batch
from core.services.audit_checkpoints import keyed_database
from core.services.telemetry import store
from core.settings import Settings
from tests.e2e.conftest import ADMIN, ARTIFACTS
from tests.e2e.servers import environment, http_server
from tests.e2e.test_first_day import WAIT_S, _see, _sign_in

DEVICE = "press-07"
HOSTILE = "<img src=x onerror=window.pwned=1>"
TS = int(time.time() * 1000) - 60_000  # a minute ago: the station's clock


def _message() -> bytes:
    """One message: a stored sample and three the server must quarantine."""
    samples = [
        {"seq": 1, "ts": TS, "values": {"temp": "41.3750"}},
        {"seq": 2, "ts": TS + 1000, "values": {"temp": HOSTILE}},
        {"seq": 3, "ts": TS + 2000, "values": {"Temp Ω": 1}},
        {"seq": 4, "ts": TS + 3000, "values": {f"ch_{n}": n for n in range(300)}},
    ]
    message = {"v": 1, "type": "telemetry", "device_id": DEVICE, "stream": "main",
               "origin": "live", "samples": samples}  # fmt: skip
    return json.dumps(message).encode()


async def _ingest(settings: Settings) -> None:
    batch = parse_batch(_message(), DEVICE)
    assert isinstance(batch, Batch) and len(batch.quarantined) == 3
    database = keyed_database(settings)
    try:
        await store.store(database, [batch])
    finally:
        await database.close()


def test_quarantined_samples_read_as_text_and_whole_on_request(
    tmp_path: Path, browser: Any
) -> None:
    with http_server(tmp_path) as server:
        env = environment(tmp_path)
        settings = Settings(
            database_url=env["PP_DATABASE_URL"],
            mqtt_url="",
            signing_key_file=Path(env["PP_SIGNING_KEY_FILE"]),
        )
        with server.client() as api:
            login = api.post(
                "/api/v1/auth/login", json=dict(zip(("username", "password"), ADMIN, strict=True))
            )
            auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
            assert api.post("/api/v1/devices", json={"id": DEVICE}, headers=auth).status_code == 201
        asyncio.run(_ingest(settings))
        _sign_in(browser, server.url, *ADMIN)

        browser.get(f"{server.url}/telemetry/quarantine?device_id={DEVICE}")
        _see(browser, "3 quarantined samples, newest received first")
        _see(browser, "Too many channels")
        zone = browser.execute_script("return Intl.DateTimeFormat().resolvedOptions().timeZone")
        _see(browser, f"times in {zone}")
        time.sleep(0.3)  # let the layout settle for the picture
        browser.save_screenshot(str(ARTIFACTS / "quarantine-page.png"))
        body = browser.find_element(By.TAG_NAME, "body").text
        assert HOSTILE in body, body  # shown as the text it is
        assert "channel name 'Temp Ω'" in body, body
        assert browser.execute_script("return window.pwned === undefined")  # never run

        WebDriverWait(browser, WAIT_S).until(
            ec.element_to_be_clickable(
                (By.XPATH, "//button[.//*[starts-with(text(), 'Show all')]]")
            )
        ).click()
        _see(browser, "the sample's values as the server read them")
        whole = browser.find_element(By.CSS_SELECTOR, ".q-dialog .font-mono").text
        assert json.loads(whole) == {f"ch_{n}": n for n in range(300)}
        time.sleep(0.3)
        browser.save_screenshot(str(ARTIFACTS / "quarantine-raw-dialog.png"))
