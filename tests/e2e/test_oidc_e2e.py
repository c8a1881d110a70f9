"""Chromium signs in through a real OpenID Connect provider by clicking the login page's button."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import authlib.deprecate  # noqa: F401  (its 'always' filter first, so ours goes before it)
import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import ARTIFACTS
from tests.e2e.servers import RunningServer, http_server
from tests.e2e.test_first_day import WAIT_S, _see

with warnings.catch_warnings():
    # The mock provider is built on authlib.jose, which Authlib deprecates: its import warns.
    warnings.simplefilter("ignore", DeprecationWarning)
    from oidc_provider_mock import run_server_in_thread

# The mock provider's token endpoint (in its thread) calls a hook Authlib deprecates.
pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning:authlib.oidc.core.grants._legacy"
)


@pytest.fixture
def provider() -> Iterator[str]:
    """A real OpenID Connect provider on a free loopback port, knowing one person."""
    with run_server_in_thread(port=0, require_nonce=True) as running:
        issuer = f"http://localhost:{running.server_port}"
        claims = {"preferred_username": "olivia", "name": "Olivia O.", "roles": ["Viewer"]}
        httpx.put(f"{issuer}/users/sub-olivia", json=claims).raise_for_status()
        yield issuer


@pytest.fixture
def server(tmp_path: Path, provider: str) -> Iterator[RunningServer]:
    """`serve` with the provider configured, as an operator would set it up."""
    with http_server(
        tmp_path,
        oidc_issuer=provider,
        oidc_client_id="precisionpulse",
        oidc_client_secret="e2e-secret",
        oidc_name="Plant SSO",
    ) as running:
        yield running


def _click(driver: Any, xpath: str) -> None:
    WebDriverWait(driver, WAIT_S).until(ec.element_to_be_clickable((By.XPATH, xpath))).click()


def test_the_button_signs_in_through_the_provider(server: RunningServer, browser: Any) -> None:
    """Login page → provider → back on the overview as the provider's user, with its role."""
    browser.get(f"{server.url}/login")
    _see(browser, "Sign in with Plant SSO")
    browser.save_screenshot(str(ARTIFACTS / "login-oidc.png"))
    _click(browser, "//*[contains(text(), 'Sign in with Plant SSO')]")
    field = WebDriverWait(browser, WAIT_S).until(
        ec.element_to_be_clickable((By.XPATH, "//input[@name='sub']"))
    )
    field.send_keys("sub-olivia")
    _click(browser, "//button[@type='submit' and text()='Authorize']")
    _see(browser, "olivia · Viewer")
    assert browser.current_url == f"{server.url}/"
    browser.save_screenshot(str(ARTIFACTS / "oidc-signed-in.png"))
