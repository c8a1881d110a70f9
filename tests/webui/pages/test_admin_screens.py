"""Admin screens: create users and roles, see validation in place, disable accounts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from nicegui import ui
from nicegui.testing.user import User

from core.db.engine import Database
from core.services import users
from tests.webui.conftest import ADMIN_PASSWORD
from tests.webui.pages.test_login import SIGN_IN_RETRIES, sign_in, signed_in

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")


async def eventually(condition: Callable[[], object], seconds: float = 3.0) -> None:
    """Wait for a click handler (which runs in the background) to have its effect."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_admin_creates_a_viewer_who_is_then_refused_admin_screens(
    user: User, database: Database
) -> None:
    """The whole first-day story: an Admin makes a Viewer account; the Viewer can't administer."""
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.should_see("Overview", retries=SIGN_IN_RETRIES)
    await user.open("/users")
    user.find(marker="new-username").type("val")
    user.find(marker="new-password").type("val-password-1")
    user.find(marker="new-roles").elements.pop().value = ["Viewer"]
    user.find("Create user").click()
    await user.should_see(marker="user val", retries=30)

    async with database.session() as session:
        created = await users.find_by_username(session, "val")
        assert created is not None
        assert await users.role_names(session, created.id) == ["Viewer"]

    user.find("Sign out").click()
    await user.should_see("Sign in", retries=30)
    await sign_in(user, "val", "val-password-1")
    await user.should_see("val · Viewer", retries=SIGN_IN_RETRIES)
    await user.open("/roles")
    await user.should_see(marker="not-allowed", retries=30)


async def test_validation_errors_show_next_to_the_field(user: User, database: Database) -> None:
    """A short password and a taken username are refused in place, and nothing is created."""
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/users")
    user.find(marker="new-username").type("bob")
    user.find(marker="new-password").type("short")
    user.find("Create user").click()
    password = user.find(marker="new-password").elements.pop()
    assert isinstance(password, ui.input)
    await eventually(lambda: password.error)
    assert password.error is not None and "at least 8" in password.error

    user.find(marker="new-username").clear().type("vic")
    user.find(marker="new-password").clear().type("long-enough-1")
    user.find("Create user").click()
    username = user.find(marker="new-username").elements.pop()
    assert isinstance(username, ui.input)
    await eventually(lambda: username.error)
    assert username.error is not None and "already exists" in username.error
    async with database.session() as session:
        assert await users.find_by_username(session, "bob") is None


async def test_admin_disables_a_user_who_then_cannot_sign_in(user: User) -> None:
    """Switching a user off in the edit dialog stops their sign-in."""
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/users")
    user.find(marker="edit vic").click()
    await user.should_see(marker="edit-user", retries=30)  # opens once the session is checked
    user.find(marker="edit-active").elements.pop().value = False
    user.find(marker="save-user").click()
    await user.should_see("disabled", retries=30)
    user.find("Sign out").click()
    await user.should_see("Sign in", retries=30)
    await sign_in(user, "vic", "viewer-password-1")
    await user.should_see("wrong username or password", retries=SIGN_IN_RETRIES)


async def test_last_admin_cannot_be_disabled(user: User) -> None:
    """The system always keeps an active Admin."""
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/users")
    user.find(marker="edit ada").click()
    await user.should_see(marker="edit-user", retries=30)
    user.find(marker="edit-active").elements.pop().value = False
    user.find(marker="save-user").click()
    await user.should_see("no active Admin", retries=30)


async def test_custom_role_is_created_and_builtins_are_fixed(user: User) -> None:
    """A new role appears with its permissions; built-in roles offer no edit button."""
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/roles")
    user.find(marker="new-role-name").type("Operator")
    user.find(marker="new-role-permissions").elements.pop().value = [
        "devices:read",
        "commands:send",
    ]
    user.find("Create role").click()
    await user.should_see(marker="role Operator", retries=30)
    await user.should_see("commands:send, devices:read", retries=30)
    await user.should_see(marker="edit Operator", retries=30)
    await user.should_not_see(marker="edit Admin")
    await user.should_not_see(marker="edit Viewer")


async def test_device_registration_shows_the_password_once(user: User) -> None:
    """Registering a device shows its MQTT password in a dialog, and the list gains it."""
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices")
    user.find(marker="new-device-id").type("press-07")
    user.find(marker="register-device").click()
    await user.should_see(marker="device-credentials", retries=30)
    await user.should_see(marker="device press-07", retries=30)
    await user.open("/devices")
    await user.should_not_see(marker="device-password")


async def test_audit_page_lists_changes_with_an_intact_chain(user: User) -> None:
    """User creation shows up in the audit log and the chain checks out."""
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/audit")
    await user.should_see("Hash chain intact", retries=30)
    table = user.find(marker="audit").elements.pop()
    assert isinstance(table, ui.table)
    await eventually(lambda: table.rows)  # rows come from a read of their own
    actions = [row["action"] for row in table.rows]
    assert "auth.login" in actions
    assert actions.count("user.create") == 2  # ada and vic, made by the fixture
