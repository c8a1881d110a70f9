"""In a real browser: a page left open keeps no rights its user has lost.

'ada' opens /devices as an Admin; another Admin ('bea', over the API) demotes her to
Viewer; her click on Register is refused in words and registers nothing. Disabled, her
open page leaves for the sign-in form by itself and says why.
"""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import ADMIN, ARTIFACTS
from tests.e2e.test_first_day import WAIT_S, _see, _sign_in, _type

BEA = ("bea", "bea-password-1")


def _api(base: str, method: str, path: str, body: object = None, token: str = "") -> Any:
    request = urllib.request.Request(
        f"{base}/api/v1{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {token}"} if token else {}),
    )
    with urllib.request.urlopen(request, timeout=WAIT_S) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def _token(base: str, username: str, password: str) -> str:
    answer = _api(base, "POST", "/auth/login", {"username": username, "password": password})
    return str(answer["access_token"])


def test_an_open_page_acts_with_the_rights_of_now(server: str, browser: Any) -> None:
    ada_token = _token(server, *ADMIN)
    _api(
        server,
        "POST",
        "/users",
        {"username": BEA[0], "password": BEA[1], "roles": ["Admin"]},
        ada_token,
    )
    bea = _token(server, *BEA)
    ada_id = next(
        u["id"] for u in _api(server, "GET", "/users", token=bea) if u["username"] == "ada"
    )

    _sign_in(browser, server, *ADMIN)
    browser.get(f"{server}/devices")
    _type(browser, "Device id", "press-09")
    # Demoted while the page is open, then the click: quicker than the page's own 3 s check.
    _api(server, "PATCH", f"/users/{ada_id}", {"roles": ["Viewer"]}, bea)
    browser.find_element(By.XPATH, "//button[.//*[text()='Register']]").click()
    refusal = '//*[contains(text(), "Nothing was done: your roles no longer allow this")]'
    WebDriverWait(browser, WAIT_S).until(ec.visibility_of_element_located((By.XPATH, refusal)))
    time.sleep(0.5)  # the notification slides in: let it settle for the screenshot
    browser.save_screenshot(str(ARTIFACTS / "e2e-open-page-refused.png"))
    assert not browser.find_elements(By.XPATH, '//*[contains(text(), "password:")]')
    devices = _api(server, "GET", "/devices", token=bea)
    assert "press-09" not in {d["id"] for d in devices}

    # Within a few seconds the page shows what a Viewer may do: no register form.
    _see(browser, "ada · Viewer")
    assert not browser.find_elements(By.XPATH, "//button[.//*[text()='Register']]")

    # Disabled: the open page goes to the sign-in form by itself and says why.
    _api(server, "PATCH", f"/users/{ada_id}", {"is_active": False}, bea)
    WebDriverWait(browser, WAIT_S).until(ec.url_contains("/login"))
    _see(browser, "Signed out:")
    browser.save_screenshot(str(ARTIFACTS / "e2e-open-page-signed-out.png"))
