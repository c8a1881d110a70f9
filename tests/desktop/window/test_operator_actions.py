"""What a signed-in operator may do at the station follows their permissions at that moment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from core import edit_keys
from core.protocol.station_config import DesiredConfig
from desktop.agent.agent import Agent
from desktop.window.operator_actions import OperatorActions
from desktop.window.sign_in_controller import SignInController
from desktop.window.station_view import StationView
from desktop.window.users_view import UsersView
from tests.desktop.replica_data import PASSWORD
from tests.desktop.window.conftest import DEVICE, People, screenshot, sign_in, until

NEW_PASSWORD = "a longer new passphrase"


@pytest.fixture
def kicks(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the window's calls of the sync's ``kick`` (it still sends, as ever)."""
    counted: list[int] = []
    kick = agent.sync.kick

    def counting() -> None:
        counted.append(1)
        kick()

    monkeypatch.setattr(agent.sync, "kick", counting)
    return counted


def edits(agent: Agent) -> list[dict[str, Any]]:
    """The fields of the edits waiting for the server, oldest first."""
    return [
        {f"{c.entity}.{c.field}": c.value for c in edit.changes} for edit in agent.replica.pending()
    ]


def table(users: UsersView) -> dict[str, tuple[str, ...]]:
    """The users table, username → (display name, roles, status), through the Qt model."""
    model = users.model
    rows = [
        tuple(model.index(r, c).data() for c in range(model.columnCount()))
        for r in range(model.rowCount())
    ]
    return {row[0]: row[1:] for row in rows}


def select(users: UsersView, username: str) -> None:
    """Select a person's row as a click would."""
    row = next(n for n, r in enumerate(users.model.rows) if r.username == username)
    users.table.selectRow(row)


def click(widget: QWidget) -> None:
    """A left click on a button."""
    QtBot.mouseClick(widget, Qt.MouseButton.LeftButton)


async def test_a_viewer_watches_and_may_not_replay_nor_manage_users(
    agent: Agent,
    view: StationView,
    people: People,
    actions: OperatorActions,
    qtbot: QtBot,
    kicks: list[int],
) -> None:
    assert await sign_in(qtbot, view, "vic") == ""
    bar = view.operator_bar
    assert not any(widget.isEnabled() for widget in bar.guarded)
    assert bar.account.isEnabled() and bar.sign_out.isEnabled()

    # A disabled button is no guard: the action itself refuses.
    assert await actions.replay_now() is None
    assert bar.message.text() == (
        "Replaying the outbox needs the commands:send permission, which your roles do not give."
    )
    assert not any("flushing" in event.text for event in agent.state.events)

    assert not await actions.users.open(bar.say)
    assert "needs the users:manage permission" in bar.message.text()
    assert not actions.users.view.isVisible()

    assert not await actions.set_interval(2.0)
    assert "needs the config:write permission" in bar.message.text()
    assert edits(agent) == [] and kicks == []


async def test_an_operator_with_commands_send_replays_now(
    view: StationView, people: People, actions: OperatorActions, qtbot: QtBot
) -> None:
    assert await sign_in(qtbot, view, "olga") == ""
    bar = view.operator_bar
    click(bar.replay_now)
    await until(lambda: bar.message.text() not in ("", "Replaying the outbox…"))
    # Allowed, and tried: this station's broker is out of reach.
    assert bar.message.text() == (
        "Not replayed: not connected to the broker: the backlog waits for the link."
    )
    assert bar.replay_now.isEnabled()  # released once the attempt ended


async def test_a_demotion_while_signed_in_blocks_the_next_action(
    agent: Agent,
    view: StationView,
    people: People,
    actions: OperatorActions,
    qtbot: QtBot,
    kicks: list[int],
) -> None:
    assert await sign_in(qtbot, view, "olga") == ""
    assert view.operator_bar.set_interval.isEnabled()
    people.log.grant_role(people.olga, "Operator", granted=False)  # a sync, meanwhile
    people.sync()

    # The bar still offers it (no check has run since): acting reads her again.
    click(view.operator_bar.set_interval)
    await until(lambda: bool(view.operator_bar.message.text()))

    assert "needs the config:write permission" in view.operator_bar.message.text()
    assert edits(agent) == [] and kicks == []
    assert not view.locked  # demoted, not disabled: still signed in


async def test_a_person_disabled_meanwhile_is_signed_out_when_they_act(
    view: StationView, people: People, actions: OperatorActions, qtbot: QtBot
) -> None:
    assert await sign_in(qtbot, view, "olga") == ""
    people.log.disable(people.olga)
    people.sync()
    assert await actions.replay_now() is None
    assert view.locked
    assert view.sign_in.message.text() == "Signed out: your account was disabled."


async def test_the_interval_goes_up_and_waits_for_the_server(
    agent: Agent,
    view: StationView,
    people: People,
    actions: OperatorActions,
    qtbot: QtBot,
    kicks: list[int],
) -> None:
    assert await sign_in(qtbot, view, "olga") == ""
    bar = view.operator_bar
    bar.interval.setValue(2.0)
    click(bar.set_interval)
    await until(lambda: bool(bar.message.text()))

    assert bar.message.text() == "Interval 2 s sent: waiting for the server."
    assert edits(agent) == [{"device_config.desired.interval_s": 2.0}]
    assert kicks == [1]
    actions.look_for_interval()
    assert actions.waiting_for == 2.0  # not in effect yet

    # The server accepted it and signed a configuration with it.
    await agent.configuration.on_desired(DesiredConfig(DEVICE, 4, {"interval_s": 2.0}))
    await until(lambda: actions.waiting_for is None)
    assert bar.message.text() == "Interval 2 s in effect (configuration version 4)."


async def test_an_admin_manages_users_locally(
    agent: Agent,
    view: StationView,
    people: People,
    actions: OperatorActions,
    qtbot: QtBot,
    kicks: list[int],
    tmp_path: Path,
) -> None:
    assert await sign_in(qtbot, view, "ada") == ""
    click(view.operator_bar.users)
    users = actions.users.view
    await until(users.isVisible)
    assert table(users) == {
        "ada": ("Ada Lovelace", "Admin", "enabled"),
        "olga": ("Olga Nowak", "Operator", "enabled"),
        "vic": ("Victor Hugo", "Viewer", "enabled"),
    }
    assert list(users.new_roles.boxes) == ["Admin", "Operator", "Viewer"]

    qtbot.keyClicks(users.new_username, "nina")
    qtbot.keyClicks(users.new_display_name, "Nina Simone")
    qtbot.keyClicks(users.new_password, PASSWORD)
    qtbot.keyClicks(users.new_password_again, PASSWORD + "!")
    assert await actions.users.create() is False
    assert users.message.text() == "The two passwords differ: type the password twice."
    users.new_password_again.setText(PASSWORD)
    users.new_roles.boxes["Operator"].setChecked(True)
    assert await actions.users.create()
    assert users.message.text() == "nina created with the role Operator: sent to the server."
    assert table(users)["nina"] == ("Nina Simone", "Operator", "enabled")
    assert users.new_username.text() == ""

    select(users, "vic")
    assert users.selected.text() == "Victor Hugo (vic)"
    assert users.toggle_active.text() == "Disable"
    click(users.toggle_active)
    await until(lambda: table(users)["vic"][2] == "disabled")
    assert users.message.text() == "vic disabled: sent to the server."
    assert users.toggle_active.text() == "Enable"  # still selected, now the other way

    users.roles.tick(["Operator", "Viewer"])
    assert await actions.users.set_roles()
    assert table(users)["vic"][1] == "Operator, Viewer"
    screenshot(users, tmp_path, "users-dialog.png")

    assert len(edits(agent)) == 3 and len(kicks) == 3

    view.operator_bar.sign_out.click()
    assert not users.isVisible()  # the dialog goes with its operator
    assert await sign_in(qtbot, view, "vic") == "Disabled."  # the station holds it already
    assert await sign_in(qtbot, view, "nina") == ""  # before the server has even seen her


async def test_users_refused_for_someone_demoted_after_the_dialog_opened(
    agent: Agent,
    view: StationView,
    people: People,
    actions: OperatorActions,
    qtbot: QtBot,
) -> None:
    assert await sign_in(qtbot, view, "ada") == ""
    assert await actions.users.open(view.operator_bar.say)
    people.log.user("root", roles=("Admin",))  # an Admin must remain
    people.log.grant_role(people.ada, "Admin", granted=False)
    people.log.grant_role(people.ada, "Viewer")
    people.sync()

    select(actions.users.view, "olga")
    assert not await actions.users.toggle_active()
    assert "needs the users:manage permission" in actions.users.view.message.text()
    assert edits(agent) == []


async def test_everyone_changes_their_own_name_and_password(
    agent: Agent,
    view: StationView,
    people: People,
    actions: OperatorActions,
    gate: SignInController,
    qtbot: QtBot,
    kicks: list[int],
    tmp_path: Path,
) -> None:
    assert await sign_in(qtbot, view, "vic") == ""  # a Viewer: no permission needed
    click(view.operator_bar.account)
    account = actions.account.view
    await until(account.isVisible)
    assert account.username.text() == "vic"
    assert account.display_name.text() == "Victor Hugo"

    account.display_name.setText("Victor M. Hugo")
    click(account.save_name)
    await until(lambda: bool(account.message.text()))
    assert account.message.text() == "Your display name is now Victor M. Hugo: sent to the server."
    assert view.operator_bar.who.text() == "Victor M. Hugo (vic)"  # the bar read him again

    qtbot.keyClicks(account.current, "not it")
    qtbot.keyClicks(account.new, NEW_PASSWORD)
    qtbot.keyClicks(account.again, NEW_PASSWORD)
    assert not await actions.account.change_password()
    assert account.message.text() == "Your current password is not right."

    for field, text in ((account.current, PASSWORD), (account.new, NEW_PASSWORD)):
        field.setText(text)
    account.again.setText(NEW_PASSWORD + "x")
    assert not await actions.account.change_password()
    assert account.message.text() == "The two new passwords differ: type the new one twice."

    for field, text in zip(
        (account.current, account.new, account.again),
        (PASSWORD, NEW_PASSWORD, NEW_PASSWORD),
        strict=True,
    ):
        field.setText(text)
    assert await actions.account.change_password()
    assert account.message.text() == (
        "Password changed: it works here now, and on the server once it has it."
    )
    assert account.current.text() == account.new.text() == ""
    screenshot(account, tmp_path, "account-dialog.png")
    assert [set(e) for e in edits(agent)] == [{"user.display_name"}, {"user.password_hash"}]
    assert len(kicks) == 2

    # Still signed in: his next edit is signed with the new password's key, which the
    # password change carries up to the server; the earlier ones with the old one's.
    account.display_name.setText("Victor Marie Hugo")
    assert await actions.account.save_name()
    renamed, changed, renamed_again = agent.replica.pending()
    old_key = edit_keys.derive(PASSWORD, people.vic)
    new_key = edit_keys.derive(NEW_PASSWORD, people.vic)
    assert changed.keys == {people.vic: new_key.hex()}
    for edit, key in ((renamed, old_key), (changed, old_key), (renamed_again, new_key)):
        assert edit_keys.check(key, edit, edit.proof)

    view.operator_bar.sign_out.click()
    assert not account.isVisible()
    assert await sign_in(qtbot, view, "vic") == "Wrong username or password."
    assert await sign_in(qtbot, view, "vic", NEW_PASSWORD) == ""
    assert gate.person is not None and gate.person.display_name == "Victor Marie Hugo"
