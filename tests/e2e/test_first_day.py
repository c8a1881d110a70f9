"""A new user's first day in a real browser: sign in as Admin, make a Viewer, see the refusal."""

from __future__ import annotations

from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.conftest import ADMIN, ARTIFACTS

WAIT_S = 15  # generous: argon2 and a cold NiceGUI page on a loaded 2-core machine


def _see(driver: Any, text: str) -> None:
    WebDriverWait(driver, WAIT_S).until(
        ec.presence_of_element_located((By.XPATH, f'//*[contains(text(), "{text}")]'))
    )


def _type(driver: Any, label: str, text: str) -> None:
    field = WebDriverWait(driver, WAIT_S).until(
        ec.element_to_be_clickable((By.XPATH, f"//input[@aria-label='{label}']"))
    )
    field.clear()
    field.send_keys(text)


def _sign_in(driver: Any, base: str, username: str, password: str) -> None:
    driver.get(f"{base}/login")
    _type(driver, "Username", username)
    _type(driver, "Password", password + Keys.ENTER)
    _see(driver, f"{username} · ")


def test_admin_makes_a_viewer_who_is_refused_admin_screens(server: str, browser: Any) -> None:
    """Everything through the browser, against a server started as the README says."""
    _sign_in(browser, server, *ADMIN)
    _see(browser, "ada · Admin")
    browser.save_screenshot(str(ARTIFACTS / "e2e-overview-admin.png"))

    browser.get(f"{server}/users")
    _type(browser, "Username", "val")
    _type(browser, "Password", "val-password-1")
    WebDriverWait(browser, WAIT_S).until(
        ec.element_to_be_clickable((By.XPATH, "//*[contains(@class,'q-select')]"))
    ).click()
    WebDriverWait(browser, WAIT_S).until(
        ec.element_to_be_clickable(
            (By.XPATH, "//div[contains(@class,'q-item')]//*[text()='Viewer']")
        )
    ).click()
    browser.find_element(By.XPATH, "//body").send_keys(Keys.ESCAPE)
    browser.find_element(By.XPATH, "//button[.//*[text()='Create user']]").click()
    _see(browser, "User 'val' created")
    browser.save_screenshot(str(ARTIFACTS / "e2e-users.png"))

    browser.find_element(By.XPATH, "//button[.//*[text()='Sign out']]").click()
    _see(browser, "Sign in")
    _sign_in(browser, server, "val", "val-password-1")
    _see(browser, "val · Viewer")
    assert not browser.find_elements(By.XPATH, "//a[@href='/users']")

    browser.get(f"{server}/users")
    _see(browser, "Your roles do not allow this page")
    assert not browser.find_elements(By.XPATH, "//*[text()='Create user']")
    browser.save_screenshot(str(ARTIFACTS / "e2e-viewer-refused.png"))
