"""Two server replicas on one PostgreSQL and one Mosquitto, a browser on each, one station.

Both ``precisionpulse serve`` processes take the station's samples through ``$share`` (each
stores some), each with a broker account of its own; the fan-out tells each what the other
stored. So both device pages show the same latest value, draw the new points, say the
station is online and show the alarm the threshold raises, whichever replica stored it.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from broker import config
from broker.credentials import PasswordFile
from broker.mosquitto_process import configure_mosquitto, free_port
from core.passwords import mosquitto_hash
from tests.e2e.conftest import ADMIN, ARTIFACTS, CHROMEDRIVER, CHROMIUM, _cli
from tests.e2e.test_first_day import WAIT_S, _see, _sign_in

pytestmark = pytest.mark.production_database
REPLICAS = {"a": ("server-a", "server-a-secret-1"), "b": ("server-b", "server-b-secret-1")}
STATION = ("press-07", "press-secret-1")
START_S = 60  # NiceGUI's import on a loaded 2-core machine, two at once
ROWS = re.compile(r"^pp_telemetry_rows_total (\S+)$", re.MULTILINE)


def _environment(tmp_path: Path, database_url: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PP_") and k != "PYTEST_CURRENT_TEST"
    }
    env["PP_DATABASE_URL"] = database_url
    env["PP_SIGNING_KEY_FILE"] = str(tmp_path / "keys" / "server-signing-key.pem")
    return env


@contextmanager
def _broker(tmp_path: Path) -> Iterator[int]:
    """Mosquitto with our ACL: a server account per replica, and the station's; its port."""
    usernames = tuple(username for username, _ in REPLICAS.values())
    broker = configure_mosquitto(tmp_path / "broker", port=free_port(), server_usernames=usernames)
    accounts = PasswordFile(broker.config_file.parent / config.PASSWORD_FILE_NAME)
    for username, password in [*REPLICAS.values(), STATION]:
        accounts.set(username, mosquitto_hash(password))
    log = (tmp_path / "mosquitto.log").open("w")
    process = subprocess.Popen(
        [broker.executable, "-c", str(broker.config_file)], stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", broker.port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, "no Mosquitto"
                time.sleep(0.05)
        yield broker.port
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@contextmanager
def _replica(name: str, env: dict[str, str], port: int, tmp_path: Path) -> Iterator[str]:
    """``serve`` as replica ``name``: its own broker account, node id and storage."""
    username, password = REPLICAS[name]
    env = env | {
        "PP_MQTT_USERNAME": username,
        "PP_MQTT_PASSWORD": password,
        "PP_NODE_ID": f"replica-{name}",
        "NICEGUI_STORAGE_PATH": str(tmp_path / f".nicegui-{name}"),
    }
    with (tmp_path / f"server-{name}.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "core.cli", "serve", "--port", str(port)],
            env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def _linked(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v1/health", timeout=1) as answer:
            return b'"connected"' in answer.read()
    except OSError:
        return False


@contextmanager
def _chromium() -> Iterator[Any]:
    """Headless Chromium, as the e2e ``browser`` fixture makes it (one per replica here)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--window-size=1280,900"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _value(driver: Any, channel: str) -> str:
    found = driver.find_elements(By.CSS_SELECTOR, f"[data-value={channel}]")
    return str(found[0].text) if found else ""


def _rows(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    found = ROWS.search(text)
    return float(found[1]) if found else 0.0


def test_a_browser_on_each_replica_sees_the_same_station_live(
    database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("replicas share a PostgreSQL database")
    env = _environment(tmp_path, database_url)
    _cli(env, "user", "create", "--username", ADMIN[0], "--role", "Admin",
         "--password-stdin", stdin=ADMIN[1] + "\n", cwd=tmp_path)  # fmt: skip
    with ExitStack() as stack:
        port = stack.enter_context(_broker(tmp_path))
        env["PP_MQTT_URL"] = f"mqtt://127.0.0.1:{port}"
        urls = {
            name: stack.enter_context(_replica(name, env, free_port(), tmp_path))
            for name in REPLICAS
        }  # both start at once
        deadline = time.monotonic() + START_S
        while not all(_linked(url) for url in urls.values()):
            assert time.monotonic() < deadline, [
                (tmp_path / f"server-{n}.log").read_text() for n in REPLICAS
            ]
            time.sleep(0.2)

        # The device and its threshold through replica A: B hears of them by the fan-out.
        api = stack.enter_context(httpx.Client(base_url=urls["a"], timeout=30))
        login = api.post("/api/v1/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]})
        api.headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        assert api.post("/api/v1/devices", json={"id": STATION[0]}).status_code == 201
        changed = api.patch(
            f"/api/v1/devices/{STATION[0]}/config",
            json={"thresholds": {"temp": {"high": "10"}}},
            headers={"If-Match": "*"},
        )
        assert changed.status_code == 200, changed.text

        browsers = {name: stack.enter_context(_chromium()) for name in REPLICAS}
        for name, driver in browsers.items():
            _sign_in(driver, urls[name], *ADMIN)
            driver.get(f"{urls[name]}/devices/{STATION[0]}")
            _see(driver, "No samples yet.")

        agent = subprocess.Popen(
            [sys.executable, "-m", "core.cli", "agent", "--device", STATION[0],
             "--broker", env["PP_MQTT_URL"], "--password-stdin", "--interval", "0.2",
             "--data-dir", str(tmp_path / "station")],
            stdin=subprocess.PIPE,
        )  # fmt: skip
        stack.callback(lambda: agent.poll() is None and agent.kill())
        assert agent.stdin is not None
        agent.stdin.write(STATION[1].encode() + b"\n")
        agent.stdin.close()

        for driver in browsers.values():
            first = WebDriverWait(driver, WAIT_S).until(lambda d: _value(d, "parts"))
            moved = WebDriverWait(driver, WAIT_S)
            moved.until(lambda d, first=first: _value(d, "parts") not in ("", first))
            _see(driver, "online")
            _see(driver, "above its high of 10")
        for name, driver in browsers.items():
            assert driver.execute_script("return window.ppLive.drawn || 0") > 0  # appended
            driver.save_screenshot(str(ARTIFACTS / f"two-replicas-{name}.png"))
        stored = {name: _rows(url) for name, url in urls.items()}
        assert all(stored.values()), stored  # each replica stored some of the samples

        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=20)
        for driver in browsers.values():
            _see(driver, "offline · clean")
        # The station's last sample, whichever replica stored it, on both pages.
        time.sleep(0.5)  # a page tick or two after its presence moved
        last = [(_value(d, "parts"), _value(d, "temp")) for d in browsers.values()]
        assert last[0] == last[1], last
