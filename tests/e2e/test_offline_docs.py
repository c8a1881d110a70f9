"""/docs and /redoc in a real Chromium that reaches no host but this one: an air-gapped plant."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import ARTIFACTS, CHROMEDRIVER, CHROMIUM
from tests.e2e.test_first_day import WAIT_S, _see


@contextmanager
def _offline_chromium() -> Iterator[Any]:
    """Headless Chromium that resolves no host but this machine: an air-gapped plant."""
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        if os.environ.get("PP_REQUIRE_BROWSER"):
            pytest.fail("needs Chromium here: apt-get install chromium chromium-driver")
        pytest.skip("needs Debian's chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--window-size=1280,900",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_api_docs_render_with_no_outside_host(server: str) -> None:
    """Swagger UI lists the operations and ReDoc draws them, with every CDN unreachable."""
    with _offline_chromium() as browser:
        with pytest.raises(WebDriverException, match="ERR_NAME_NOT_RESOLVED"):
            browser.get("https://cdn.jsdelivr.net/")  # the CDN FastAPI's own pages load from
        browser.get(f"{server}/docs")
        wait = WebDriverWait(browser, WAIT_S)
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".opblock")))
        paths = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")]
        assert "/api/v1/health" in paths, paths
        assert "/api/v1/auth/login" in paths, paths
        browser.save_screenshot(str(ARTIFACTS / "e2e-docs-offline.png"))

        browser.get(f"{server}/redoc")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "[data-section-id]")))
        _see(browser, "/api/v1/health")
        browser.save_screenshot(str(ARTIFACTS / "e2e-redoc-offline.png"))
        # Nothing failed but ReDoc's footer logo, which it fetches from its maker's CDN and
        # hides when that does not load: the docs policy keeps it out, online too.
        failed = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert all("cdn.redoc.ly/redoc/logo-mini.svg" in e["message"] for e in failed), failed
