"""An open page acts with the rights of now, not those it was opened with.

Each test opens a page as the Admin 'ada', then changes her account through the services,
as another Admin's session would (disable, demote to Viewer, delete, sign out elsewhere),
and only then clicks: nothing may change and nothing may be revealed, and she is told why.
A page whose session ended leaves for sign-in by itself within a few seconds.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from nicegui import ui
from nicegui.testing.user import User
from sqlalchemy import select

from core.db.engine import Database
from core.db.models import AuthSession, DeviceConfig
from core.passwords import verify_password
from core.rbac import PERMISSIONS
from core.services import auth, devices, roles, users
from core.services.actor import Actor
from tests.webui.conftest import ADMIN_PASSWORD
from tests.webui.pages.test_admin_screens import eventually
from tests.webui.pages.test_login import signed_in
from webui.components import session_watch

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")

CHANGES = ["disabled", "demoted", "deleted", "signed out"]
REFUSED = "Nothing was done"
SHELL = Actor(name="test", permissions=frozenset(PERMISSIONS))  # not an Admin: no accounts


@pytest.fixture
async def bea(database: Database) -> AsyncIterator[None]:
    """A second Admin, so that 'ada' may lose hers (the system always keeps one)."""
    async with database.session() as session:
        await users.bootstrap_user(
            session, username="bea", password="bea-password-1", roles=["Admin"]
        )
    yield


@pytest.fixture
def no_watch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the page's own session check out of the way: the click itself must refuse."""
    monkeypatch.setattr(session_watch, "CHECK_EVERY_S", 3600.0)


async def change_ada(database: Database, how: str) -> None:
    """What another Admin's session does to 'ada' while her page stays open."""
    async with database.session() as session:
        ada = await users.find_by_username(session, "ada")
        bea = await users.find_by_username(session, "bea")
        assert ada is not None and bea is not None
        admin = await users.actor_for(session, bea)
        if how == "disabled":
            await users.update_user(session, actor=admin, user_id=ada.id, is_active=False)
        elif how == "demoted":
            await users.update_user(session, actor=admin, user_id=ada.id, roles=["Viewer"])
        elif how == "deleted":
            await users.delete_user(session, actor=admin, user_id=ada.id)
        elif how == "signed out":
            live = await session.scalars(
                select(AuthSession.id).where(
                    AuthSession.user_id == ada.id, AuthSession.revoked_at.is_(None)
                )
            )
            for session_id in list(live):
                await auth.logout(session, session_id=session_id, actor="bea")
        else:
            raise AssertionError(how)


async def refused(user: User) -> None:
    """She is told that nothing was done."""
    await eventually(lambda: any(REFUSED in message for message in user.notify.messages))


@pytest.mark.parametrize("how", CHANGES)
@pytest.mark.usefixtures("bea", "no_watch")
async def test_register_on_an_open_devices_page_is_refused(
    user: User, database: Database, how: str
) -> None:
    """No device is made and no MQTT password shown once her rights are gone."""
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices")
    await user.should_see(marker="register-device", retries=30)
    await change_ada(database, how)

    user.find(marker="new-device-id").type("press-09")
    user.find(marker="register-device").click()
    await refused(user)
    await user.should_not_see(marker="device-credentials")
    await user.should_not_see(marker="device-password")
    async with database.session() as session:
        assert not await devices.exists(session, "press-09")
    # A disabled or deleted account's sessions may be ended with it, or found disabled.
    reasons = {
        "disabled": ("the account is disabled", "session has ended"),
        "demoted": ("'devices:write' is required",),
        "deleted": ("the account is disabled", "session has ended"),
        "signed out": ("session has ended",),
    }[how]
    said = user.notify.messages
    assert any(reason in message for reason in reasons for message in said), said


@pytest.mark.parametrize("how", ["disabled", "demoted"])
@pytest.mark.usefixtures("bea", "no_watch")
async def test_create_user_on_an_open_users_page_is_refused(
    user: User, database: Database, how: str
) -> None:
    """The form filled in before the change creates nobody after it."""
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/users")
    user.find(marker="new-username").type("mallory")
    user.find(marker="new-password").type("mallory-password-1")
    await change_ada(database, how)
    user.find("Create user").click()
    await refused(user)
    async with database.session() as session:
        assert await users.find_by_username(session, "mallory") is None


@pytest.mark.parametrize("how", ["deleted", "demoted"])
@pytest.mark.usefixtures("bea", "no_watch")
async def test_password_reset_in_an_open_dialog_is_refused(
    user: User, database: Database, how: str
) -> None:
    """An edit dialog opened while she was an Admin saves nothing after."""
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/users")
    user.find(marker="edit vic").click()
    await user.should_see(marker="edit-user", retries=30)
    await change_ada(database, how)
    user.find(marker="edit-password").type("taken-over-1")
    user.find(marker="save-user").click()
    await refused(user)
    async with database.session() as session:
        vic = await users.find_by_username(session, "vic")
        assert vic is not None
        assert not verify_password("taken-over-1", vic.password_hash)


@pytest.mark.usefixtures("bea", "no_watch")
async def test_opening_an_edit_dialog_after_demotion_is_refused(
    user: User, database: Database
) -> None:
    """The page stops offering: the edit button answers with the reason, not the form."""
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/users")
    await user.should_see(marker="edit vic", retries=30)
    await change_ada(database, "demoted")
    user.find(marker="edit vic").click()
    await refused(user)
    await user.should_not_see(marker="edit-user")


@pytest.mark.parametrize("how", ["disabled", "demoted"])
@pytest.mark.usefixtures("bea", "no_watch")
async def test_granting_in_an_open_role_dialog_is_refused(
    user: User, database: Database, how: str
) -> None:
    """A custom role gains no permission from a dialog opened before the change."""
    async with database.session() as session:
        await roles.create_role(
            session, actor=SHELL, name="Operator", description="", permissions=["devices:read"]
        )
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/roles")
    user.find(marker="edit Operator").click()
    await user.should_see(marker="edit-role", retries=30)
    await change_ada(database, how)
    picker = user.find(marker="edit-role-permissions").elements.pop()
    assert isinstance(picker, ui.select)
    picker.value = ["devices:read", "users:manage"]
    user.find(marker="save-role").click()
    await refused(user)
    async with database.session() as session:
        operator = next(r for r in await roles.list_roles(session) if r.name == "Operator")
        assert await roles.permissions_of(session, operator.id) == ["devices:read"]


@pytest.mark.parametrize("how", ["signed out", "demoted"])
@pytest.mark.usefixtures("bea", "no_watch")
async def test_configuration_save_on_an_open_device_page_is_refused(
    user: User, database: Database, how: str
) -> None:
    """No new configuration version is stored or published."""
    async with database.session() as session:
        await devices.create_device(session, actor=SHELL, device_id="kiln-1", name="Kiln")
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices/kiln-1")
    await user.should_see(marker="config-save", retries=30)
    await change_ada(database, how)
    user.find(marker="config-interval").type("0.5")
    user.find(marker="config-save").click()
    await refused(user)
    async with database.session() as session:
        config = await session.get(DeviceConfig, "kiln-1")
        assert config is not None and config.desired_version == 0


@pytest.mark.parametrize("how", ["signed out", "disabled", "deleted"])
@pytest.mark.usefixtures("bea")
async def test_an_ended_session_sends_its_open_page_to_sign_in(
    user: User, database: Database, how: str
) -> None:
    """Within a few seconds, with no click, the page is the sign-in form saying why."""
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices")
    await user.should_see(marker="register-device", retries=30)
    await change_ada(database, how)
    # The page checks every CHECK_EVERY_S (3 s); a little more for the round trip.
    await user.should_see(marker="session-ended", retries=int(session_watch.CHECK_EVERY_S * 15))
    await user.should_see("Sign in")
    await user.should_not_see(marker="register-device")


@pytest.mark.usefixtures("bea")
async def test_a_demoted_page_stops_offering_what_she_lost(
    user: User, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page reloads with what a Viewer may do: no register form, and a word why."""
    monkeypatch.setattr(session_watch, "CHECK_EVERY_S", 0.2)
    await signed_in(user, "ada", ADMIN_PASSWORD)
    await user.open("/devices")
    await user.should_see(marker="register-device", retries=30)
    await change_ada(database, "demoted")
    await user.should_see("ada · Viewer", retries=50)
    await user.should_not_see(marker="register-device")
    await user.should_see(session_watch.NOTICE)


async def test_sign_out_of_an_ended_session_goes_to_sign_in(user: User, database: Database) -> None:
    """Signing out of a session already ended elsewhere just leaves for the sign-in form."""
    await signed_in(user, "ada", ADMIN_PASSWORD)
    async with database.session() as session:
        ada = await users.find_by_username(session, "ada")
        assert ada is not None
        for session_id in list(
            await session.scalars(select(AuthSession.id).where(AuthSession.user_id == ada.id))
        ):
            await auth.logout(session, session_id=uuid.UUID(str(session_id)), actor="bea")
    user.find("Sign out").click()
    await user.should_see("Sign in", retries=30)
