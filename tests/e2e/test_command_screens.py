"""In a real browser: the device page's commands and the commands page, in every state.

The commands are made and moved through the service's own transitions (as the API and the
dispatcher would) in the server's database; the pages must show each state in words,
times with their zone, the results in words, and never a raw command id.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from core.db.types import utcnow
from core.protocol import commands as protocol
from core.rbac import PERMISSIONS
from core.services import commands, devices
from core.services.actor import Actor
from core.services.audit_checkpoints import keyed_database
from core.settings import Settings
from tests.e2e.conftest import ADMIN, ARTIFACTS
from tests.e2e.servers import environment, http_server
from tests.e2e.test_first_day import WAIT_S, _see, _sign_in

CARD = "//div[contains(@class, 'q-card')][.//div[text()='Commands']]"
BOB = Actor(name="bob", permissions=frozenset(PERMISSIONS))


async def _seed(settings: Settings) -> list[str]:
    """press-07 with a command in each state a person meets; their ids."""
    database = keyed_database(settings)
    ids: list[str] = []

    async def create(kind: str, timeout_s: float = 600, **args: object) -> Any:
        async with database.session() as session:
            command = await commands.create(
                session, actor=BOB, device_id="press-07", kind=kind, args=args, timeout_s=timeout_s
            )
        ids.append(str(command.id))
        return command.id

    async def answer(command_id: Any, state: str, detail: str, **result: Any) -> None:
        async with database.session() as session:
            await commands.attempt(session, command_id=command_id)
            await commands.mark_sent(session, command_id=command_id)
        reply = protocol.Result("press-07", str(command_id), state, detail, result)  # type: ignore[arg-type]
        async with database.session() as session:
            await commands.record_result(session, result=reply, device_id="press-07")

    try:
        async with database.session() as session:
            await devices.create_device(session, actor=BOB, device_id="press-07", name="Press 7")
        expiring = await create(protocol.PING, timeout_s=1)
        async with database.session() as session:
            await commands.expire_due(session, now=utcnow() + timedelta(seconds=2))
        assert expiring
        ping = await create(protocol.PING)
        station_ms = int(time.time() * 1000) - 2500  # a station clock running behind
        await answer(ping, "succeeded", "answered", station_time_ms=station_ms, uptime_s=7384)
        config = await create(protocol.UPDATE_CONFIG, interval_s=0.5, heartbeat_s=15)
        await answer(config, "succeeded", "v1 applied", version=1)
        flush = await create(protocol.FLUSH_OUTBOX)
        await answer(
            flush,
            "failed",
            "the server acknowledged up to seq 4521 of 4551 before the command expired "
            "(the link is down)",
            sent=120,
            acked_seq=4521,
            pending=30,
        )
        rejected = await create(protocol.PING)
        await answer(rejected, "rejected", "signature: the server's key is not trusted here")
        canceled = await create(protocol.FLUSH_OUTBOX)
        async with database.session() as session:
            await commands.cancel(session, actor=BOB, command_id=canceled)
        delivered = await create(protocol.FLUSH_OUTBOX)
        await answer(delivered, "delivered", "")
        await create(protocol.PING)  # still queued: offered a Cancel button
    finally:
        await database.close()
    return ids


def _choose(browser: Any, within: Any, option: str, nth: int = 0) -> None:
    """Open the ``nth`` select ``within`` and click ``option``."""
    selects = within.find_elements(
        By.XPATH, ".//*[contains(concat(' ', @class, ' '), ' q-select ')]"
    )
    selects[nth].click()
    WebDriverWait(browser, WAIT_S).until(
        ec.element_to_be_clickable(
            (By.XPATH, f"//div[contains(@class,'q-item')]//*[text()='{option}']")
        )
    ).click()


def test_commands_read_in_words_on_the_device_and_commands_pages(
    tmp_path: Path, browser: Any
) -> None:
    with http_server(tmp_path) as server:
        env = environment(tmp_path)
        settings = Settings(
            database_url=env["PP_DATABASE_URL"],
            mqtt_url="",
            signing_key_file=Path(env["PP_SIGNING_KEY_FILE"]),
        )
        ids = asyncio.run(_seed(settings))
        browser.set_window_size(1280, 2400)  # the whole card in one picture
        _sign_in(browser, server.url, *ADMIN)

        browser.get(f"{server.url}/devices/press-07")
        for state in ("Queued", "Delivered", "Canceled", "Rejected", "Failed", "Succeeded"):
            _see(browser, state)
        _see(browser, "Expired")
        _see(browser, "round trip")
        _see(browser, "2.5 s behind the server")
        _see(browser, "120 samples sent")
        card = browser.find_element(By.XPATH, CARD)
        browser.execute_script("arguments[0].scrollIntoView()", card)
        time.sleep(0.3)  # let the scroll settle for the picture
        card.screenshot(str(ARTIFACTS / "commands-device.png"))
        text = card.text
        assert not [i for i in ids if i in text or i[:8] in text], "a command id is shown"
        assert "{" not in text and "None" not in text, text

        # A bad value is named under its field as it is typed, before anything is sent.
        _choose(browser, card, "Change settings")
        # Within the card: the configuration card has a field of that name too.
        field = ".//input[@aria-label='Seconds between samples']"
        card.find_element(By.XPATH, field).send_keys("0")
        _see(browser, "Seconds between samples must be between 0.05 and 3600; 0 is too short.")
        time.sleep(0.5)  # the message slides in under the field
        card.screenshot(str(ARTIFACTS / "commands-device-invalid.png"))

        browser.set_window_size(1280, 1000)
        browser.get(f"{server.url}/commands")
        _see(browser, "Expired")
        _see(browser, "press-07")
        _choose(browser, browser.find_element(By.TAG_NAME, "main"), "From … to …", nth=3)
        _see(browser, "Times are read in")
        time.sleep(0.3)
        browser.save_screenshot(str(ARTIFACTS / "commands-page.png"))
        text = browser.find_element(By.TAG_NAME, "body").text
        assert not [i for i in ids if i in text or i[:8] in text], "a command id is shown"
