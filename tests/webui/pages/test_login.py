"""Signing in and out in the browser, and what each role is shown."""

from __future__ import annotations

import pytest
from nicegui.testing.user import User

from tests.webui.conftest import ADMIN_PASSWORD, VIEWER_PASSWORD

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")


# How long to wait for a sign-in's outcome (0.1 s per retry): it costs one or two argon2
# derivations, ~0.2 s each on a quiet machine and seconds on a loaded 2-core CI box.
SIGN_IN_RETRIES = 150


async def sign_in(user: User, username: str, password: str) -> None:
    """Fill in the login form and submit it."""
    await user.open("/login")
    user.find("Username").type(username)
    user.find("Password").type(password)
    user.find("Sign in").click()


async def test_anonymous_visitor_is_sent_to_login(user: User) -> None:
    """Every page needs a signed-in user."""
    await user.open("/users")
    await user.should_see("Sign in", retries=30)


async def test_admin_signs_in_and_sees_admin_navigation(user: User) -> None:
    """An Admin lands on the overview with every admin screen in reach."""
    await sign_in(user, "ada", ADMIN_PASSWORD)
    await user.should_see("Overview", retries=SIGN_IN_RETRIES)
    await user.should_see(marker="current-user", retries=30)
    await user.should_see("ada · Admin", retries=30)
    for label in ("Users", "Roles", "Devices", "Audit log"):
        await user.should_see(marker=f"nav {label}", retries=30)


async def test_wrong_password_is_shown_in_place(user: User) -> None:
    """A failed sign-in says why and stays on the form."""
    await sign_in(user, "ada", "not-the-password")
    await user.should_see("wrong username or password", retries=SIGN_IN_RETRIES)
    await user.should_see("Sign in", retries=30)


async def test_viewer_sees_no_admin_navigation_and_is_refused(user: User) -> None:
    """A Viewer has no admin links and a clear refusal on typed URLs."""
    await signed_in(user, "vic", VIEWER_PASSWORD)
    await user.should_see("vic · Viewer", retries=SIGN_IN_RETRIES)
    await user.should_see(marker="nav Devices", retries=30)
    for label in ("Users", "Roles", "Audit log"):
        await user.should_not_see(marker=f"nav {label}")
    for route in ("/users", "/roles", "/audit"):
        await user.open(route)
        await user.should_see(marker="not-allowed", retries=30)
        await user.should_not_see(marker="new-user")


async def test_sign_out_ends_the_session(user: User) -> None:
    """After signing out, pages send the browser back to the login form."""
    await signed_in(user, "ada", ADMIN_PASSWORD)
    user.find("Sign out").click()
    await user.should_see("Sign in", retries=30)
    await user.open("/users")
    await user.should_see("Sign in", retries=30)


async def signed_in(user: User, username: str, password: str) -> None:
    """Sign in and wait until the app shell is there."""
    await sign_in(user, username, password)
    await user.should_see(marker="current-user", retries=SIGN_IN_RETRIES)
