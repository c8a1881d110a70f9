"""Deleting people and changing what a role grants, in the station's users dialog: asked,
gated by the permission ``local_users`` requires, and checked again at the moment of acting."""

from __future__ import annotations

import asyncio
from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QPushButton
from pytestqt.qtbot import QtBot

from desktop.agent.agent import Agent
from desktop.window.operator_actions import OperatorActions
from desktop.window.station_view import StationView
from desktop.window.users_controller import UsersController
from tests.desktop.window.conftest import People, screenshot, sign_in, until
from tests.desktop.window.test_operator_actions import click, edits, select, table


async def open_users(view: StationView, actions: OperatorActions) -> UsersController:
    """Open the users dialog from the bar, as an operator does."""
    click(view.operator_bar.users)
    await until(actions.users.view.isVisible)
    return actions.users


async def question_asked(users: UsersController) -> QMessageBox:
    """The question the dialog asks, once it shows."""
    await until(lambda: users.question.box is not None and users.question.box.isVisible())
    assert users.question.box is not None
    return users.question.box


async def answer(users: UsersController, *, yes: bool) -> None:
    """Press the question's action button, or Cancel."""
    box = await question_asked(users)
    if yes:
        button = box.findChild(QPushButton, "question_yes")
    else:
        button = box.button(QMessageBox.StandardButton.Cancel)
    assert button is not None
    click(button)


async def test_an_admin_deletes_a_person_once_asked_naming_them(
    agent: Agent,
    view: StationView,
    people: People,
    actions: OperatorActions,
    qtbot: QtBot,
    tmp_path: Path,
) -> None:
    assert await sign_in(qtbot, view, "ada") == ""
    users = await open_users(view, actions)
    select(users.view, "vic")
    assert users.view.delete_user.isEnabled()

    click(users.view.delete_user)
    box = await question_asked(users)
    assert box.text() == "Delete Victor Hugo (vic)?"
    assert box.informativeText() == (
        "vic can no longer sign in here, and anywhere else once the server has the change."
        " Deleting cannot be undone from a station."
    )
    screenshot(box, tmp_path, "delete-question.png")
    await answer(users, yes=False)
    await until(lambda: bool(users.view.message.text()))
    assert users.view.message.text() == "vic was not deleted."
    assert edits(agent) == [] and "vic" in table(users.view)

    click(users.view.delete_user)
    await answer(users, yes=True)
    await until(lambda: "vic" not in table(users.view))
    assert users.view.message.text() == "vic deleted: sent to the server."
    assert edits(agent) == [{"user.deleted": True, "user.is_active": False}]
    assert users.selected is None and not users.view.delete_user.isEnabled()

    view.operator_bar.sign_out.click()
    assert await sign_in(qtbot, view, "vic") == "Wrong username or password."  # gone here


async def test_nobody_deletes_their_own_account(
    agent: Agent, view: StationView, people: People, actions: OperatorActions, qtbot: QtBot
) -> None:
    assert await sign_in(qtbot, view, "ada") == ""
    users = await open_users(view, actions)
    select(users.view, "ada")
    assert not users.view.delete_user.isEnabled()
    assert users.view.delete_user.toolTip() == (
        "you cannot delete your own account: another Admin can"
    )

    deleting = asyncio.ensure_future(users.delete())  # the button is no guard: the act is
    await answer(users, yes=True)
    assert not await deleting
    assert users.view.message.text() == "You cannot delete your own account: another Admin can."
    assert edits(agent) == []


async def test_a_deletion_by_someone_demoted_after_the_dialog_opened_is_refused(
    agent: Agent, view: StationView, people: People, actions: OperatorActions, qtbot: QtBot
) -> None:
    assert await sign_in(qtbot, view, "ada") == ""
    users = await open_users(view, actions)
    select(users.view, "olga")
    people.log.user("root", roles=("Admin",))  # an Admin must remain
    people.log.grant_role(people.ada, "Admin", granted=False)
    people.log.grant_role(people.ada, "Viewer")
    people.sync()

    deleting = asyncio.ensure_future(users.delete())
    await answer(users, yes=True)
    assert not await deleting
    assert users.view.message.text() == (
        "Deleting olga needs the users:manage permission, which your roles do not give."
    )
    assert edits(agent) == []


async def test_signing_out_takes_the_question_away(
    agent: Agent, view: StationView, people: People, actions: OperatorActions, qtbot: QtBot
) -> None:
    assert await sign_in(qtbot, view, "ada") == ""
    users = await open_users(view, actions)
    select(users.view, "vic")
    deleting = asyncio.ensure_future(users.delete())
    await question_asked(users)
    view.operator_bar.sign_out.click()
    assert not await deleting  # no answer is a no
    assert users.question.box is None
    assert edits(agent) == []


def role_list(users: UsersController) -> list[str]:
    """The Roles tab's list, top to bottom."""
    roles = users.view.roles_tab.roles
    return [roles.item(row).text() for row in range(roles.count())]


def choose_role(users: UsersController, name: str) -> None:
    """Select a role in the Roles tab's list, as a click would."""
    users.view.tabs.setCurrentWidget(users.view.roles_tab)
    row = next(n for n, role in enumerate(users.roles.shown) if role.name == name)
    users.view.roles_tab.roles.setCurrentRow(row)


def ticked(users: UsersController) -> set[str]:
    """The permissions ticked in the Roles tab."""
    return set(users.view.roles_tab.permissions.ticked())


async def test_an_admin_changes_what_a_custom_role_grants(
    agent: Agent,
    view: StationView,
    people: People,
    actions: OperatorActions,
    qtbot: QtBot,
    tmp_path: Path,
) -> None:
    assert await sign_in(qtbot, view, "ada") == ""
    users = await open_users(view, actions)
    tab = users.view.roles_tab
    assert role_list(users) == ["Admin (built-in)", "Operator", "Viewer (built-in)"]

    choose_role(users, "Viewer")  # built in: read only, and the tab says why
    assert ticked(users) == {"telemetry:read", "devices:read"}
    assert not any(box.isEnabled() for box in tab.permissions.boxes.values())
    assert not tab.save.isEnabled()
    assert tab.note.text().startswith("Viewer is built in: it is the same on the server")
    screenshot(users.view, tmp_path, "roles-built-in.png")

    choose_role(users, "Operator")
    assert ticked(users) == {"telemetry:read", "devices:read", "commands:send", "config:write"}
    assert all(box.isEnabled() for box in tab.permissions.boxes.values())
    tab.permissions.boxes["commands:send"].setChecked(False)
    tab.permissions.boxes["reports:read"].setChecked(True)
    click(tab.save)
    await until(lambda: bool(users.view.message.text()))
    assert users.view.message.text() == (
        "Operator now grants config:write, devices:read, reports:read, telemetry:read:"
        " sent to the server."
    )
    assert users.roles.selected is not None and users.roles.selected.name == "Operator"
    assert ticked(users) == {"telemetry:read", "devices:read", "reports:read", "config:write"}
    (edit,) = agent.replica.pending()
    log = people.log
    operator, granted = log.roles["Operator"], log.permissions
    assert {(c.entity, c.key, c.field, c.value) for c in edit.changes} == {
        ("role_permission", f"{operator}:{granted['commands:send']}", "deleted", True),
        ("role_permission", f"{operator}:{granted['reports:read']}", "deleted", False),
    }
    screenshot(users.view, tmp_path, "roles-custom.png")

    view.operator_bar.sign_out.click()
    assert await sign_in(qtbot, view, "olga") == ""  # an Operator: no replay now any more
    assert not view.operator_bar.replay_now.isEnabled()
    assert view.operator_bar.set_interval.isEnabled()


async def test_without_roles_manage_the_roles_only_show(
    agent: Agent, view: StationView, people: People, actions: OperatorActions, qtbot: QtBot
) -> None:
    people.log.role("Manager", ["users:manage", "telemetry:read"])
    people.log.user("max", roles=("Manager",), display_name="Max Planck")
    people.sync()
    assert await sign_in(qtbot, view, "max") == ""
    users = await open_users(view, actions)
    tab = users.view.roles_tab

    choose_role(users, "Operator")
    assert not tab.save.isEnabled()
    assert not any(box.isEnabled() for box in tab.permissions.boxes.values())
    assert tab.note.text() == (
        "Changing what a role grants needs the roles:manage permission,"
        " which your roles do not give."
    )
    assert not await users.roles.save()  # the act checks again, whatever the tab offered
    assert users.view.message.text() == (
        "Changing what the role Operator grants needs the roles:manage permission,"
        " which your roles do not give."
    )
    assert edits(agent) == []
