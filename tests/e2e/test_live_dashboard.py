"""The live dashboard in a real browser: a running station's values appear, then it goes."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.demo.test_launch import Demo
from tests.e2e.conftest import ARTIFACTS
from tests.e2e.test_first_day import WAIT_S, _see, _sign_in

PASSWORD = "e2e-admin-password-1"
BROKER = re.compile(r"broker \(\w+\) on ([\d.]+):(\d+)")


def _start_station(broker: str, password: str, data_dir: Path) -> subprocess.Popen[bytes]:
    """Station e2e-1 as its own process, sampling twice a second, its password on stdin."""
    agent = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "agent", "--device", "e2e-1", "--broker", broker,
         "--password-stdin", "--interval", "0.5", "--data-dir", str(data_dir)],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    assert agent.stdin is not None
    agent.stdin.write(password.encode() + b"\n")
    agent.stdin.close()
    return agent


def _register_station(url: str, device_id: str) -> str:
    """Register a device through the API as the demo's admin; its MQTT password."""
    login = httpx.post(
        f"{url}/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}, timeout=30
    )
    login.raise_for_status()
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    made = httpx.post(
        f"{url}/api/v1/devices", json={"id": device_id, "name": "e2e"}, headers=headers, timeout=30
    )
    assert made.status_code == 201, made.text
    password: str = made.json()["mqtt_password"]
    return password


def _text(driver: Any, css: str) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return str(found[0].text) if found else ""


def test_a_station_appears_live_and_its_badge_turns_offline(tmp_path: Path, browser: Any) -> None:
    """Open the page first; the station's values then arrive without a reload."""
    demo = Demo(tmp_path / "data", PP_ADMIN_PASSWORD=PASSWORD)
    agent: subprocess.Popen[bytes] | None = None
    try:
        demo.wait_until_linked()
        found = BROKER.search(demo.output())
        assert found, demo.output()
        password = _register_station(demo.url, "e2e-1")

        _sign_in(browser, demo.url, "admin", PASSWORD)
        browser.get(f"{demo.url}/devices/e2e-1")
        _see(browser, "No samples yet.")
        _see(browser, "Browser: connected")
        _see(browser, "Broker: connected")

        agent = _start_station(f"mqtt://{found[1]}:{found[2]}", password, tmp_path / "station")

        wait = WebDriverWait(browser, WAIT_S)
        first = wait.until(lambda d: _text(d, "[data-value=parts]"))
        wait.until(lambda d: _text(d, "[data-value=parts]") not in ("", first))  # it moves
        assert re.fullmatch(r"\d+\.\d\d", _text(browser, "[data-value=temp]"))  # scale kept
        _see(browser, "online")
        assert browser.execute_script("return window.ppLive.drawn || 0") > 0  # appended
        browser.save_screenshot(str(ARTIFACTS / "device-live.png"))

        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=20)
        _see(browser, "offline · clean")
        browser.get(f"{demo.url}/fleet")
        _see(browser, "offline · clean")
        time.sleep(0.5)  # let the other stations' rows fill in for the picture
        browser.save_screenshot(str(ARTIFACTS / "fleet.png"))
    finally:
        if agent is not None and agent.poll() is None:
            agent.kill()
        demo.stop(signal.SIGINT, group=True)
