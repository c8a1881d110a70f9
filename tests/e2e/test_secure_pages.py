"""Every page in Chromium over HTTPS under the CSP: it renders, works, and nothing is refused."""

from __future__ import annotations

import base64
import hashlib
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import ADMIN, ARTIFACTS, CHROMEDRIVER, CHROMIUM
from tests.e2e.servers import RunningServer, https_server
from tests.e2e.test_first_day import WAIT_S, _see, _sign_in

DEVICE = "csp-1"
# Each page, and a text it shows once rendered and connected.
PAGES = {
    "/": "Overview",
    "/fleet": "Fleet",
    "/devices": "Devices",
    f"/devices/{DEVICE}": f"Device {DEVICE}",
    f"/devices/{DEVICE}/history": f"History of {DEVICE}",
    "/users": "Users",
    "/roles": "Roles",
    "/telemetry/quarantine": "No quarantined samples",
    "/audit": "Hash chain intact",  # the CLI's entries and the server's: one keyed chain
}


def _spki_hash(certificate: Path) -> str:
    """What Chromium's --ignore-certificate-errors-spki-list names: this one key, no other."""
    key = x509.load_pem_x509_certificate(certificate.read_bytes()).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    """The server over HTTPS, with one device registered through the API."""
    with https_server(tmp_path) as running, running.client() as client:
        login = client.post(
            "/api/v1/auth/login", json=dict(zip(("username", "password"), ADMIN, strict=True))
        )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        made = client.post("/api/v1/devices", json={"id": DEVICE, "name": "CSP"}, headers=headers)
        assert made.status_code == 201, made.text
        yield running


@pytest.fixture
def browser(server: RunningServer) -> Iterator[Any]:
    """Headless Chromium that trusts the server's key alone and keeps the console log."""
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.skip("needs Debian's chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    spki = _spki_hash(server.ca.parent / "server.crt")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--window-size=1280,900",
                 f"--ignore-certificate-errors-spki-list={spki}"):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def _complaints(driver: Any) -> list[str]:
    """Console errors and anything the Content Security Policy refused since the last call."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" or "Content Security Policy" in entry["message"]
    ]


def _socket_connected(driver: Any) -> bool:
    """NiceGUI's socket.io link is up, over a websocket (not long polling)."""
    transport = "window.socket?.io?.engine?.transport?.name"
    script = f"return Boolean(window.socket?.connected) && {transport} === 'websocket'"
    return bool(driver.execute_script(script))


def test_every_page_works_over_https_under_the_csp(server: RunningServer, browser: Any) -> None:
    """Sign in, open each page: it renders, its socket connects, the console stays clean."""
    _sign_in(browser, server.url, *ADMIN)
    _see(browser, "ada · Admin")
    assert _complaints(browser) == []
    session = browser.get_cookie("session")
    assert session["secure"] and session["httpOnly"] and session["sameSite"] == "Lax"

    for path, text in PAGES.items():
        browser.get(f"{server.url}{path}")
        _see(browser, text)
        WebDriverWait(browser, WAIT_S).until(_socket_connected)  # under connect-src 'self'
        name = path.strip("/").replace("/", "-") or "overview"
        browser.save_screenshot(str(ARTIFACTS / f"secure-{name}.png"))
        assert _complaints(browser) == [], path


def test_the_storage_that_holds_sign_ins_is_private(server: RunningServer, browser: Any) -> None:
    """NiceGUI's storage-user-*.json (who is signed in) is 0600 in a 0700 directory."""
    _sign_in(browser, server.url, *ADMIN)
    deadline = time.monotonic() + WAIT_S
    while not (files := list(server.storage.glob("storage-user-*.json"))):
        assert time.monotonic() < deadline, "NiceGUI wrote no user storage"
        time.sleep(0.1)
    assert stat.S_IMODE(server.storage.stat().st_mode) == 0o700
    assert {stat.S_IMODE(path.stat().st_mode) for path in files} == {0o600}
