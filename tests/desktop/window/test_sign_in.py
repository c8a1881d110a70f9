"""Operators sign in to the station window against its replica; idle or disabled, they leave."""

from __future__ import annotations

import re
import sqlite3
import threading
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from desktop.agent import sign_in as sign_in_module
from desktop.agent.agent import Agent
from desktop.window import sign_in_controller
from desktop.window.idle import IdleWatch
from desktop.window.options import WindowOptions
from desktop.window.sign_in_controller import SignInController
from desktop.window.station_controller import StationController
from desktop.window.station_view import StationView
from tests.desktop.window.conftest import People, screenshot, sign_in, until

LOCAL_TIME = re.compile(r"Locked until \d\d:\d\d:\d\d\.")


def assert_not_squeezed(view: StationView) -> None:
    """Every part of the sign-in form has the height it needs (a long reason included)."""
    QApplication.processEvents()
    form = view.sign_in
    for widget in (form.username, form.password, form.submit, form.message):
        assert widget.height() >= widget.sizeHint().height(), widget.objectName()


def log_lines(agent: Agent) -> list[str]:
    """The station's event log, oldest first."""
    return [event.text for event in agent.state.events]


async def test_the_window_opens_on_the_sign_in_screen_and_the_agent_samples_behind_it(
    agent: Agent, view: StationView, people: People, gate: SignInController, tmp_path: Path
) -> None:
    assert view.locked
    assert not view.station.isVisible()
    view.show()
    await agent.sample_once()  # the station samples whoever is (not) signed in
    assert agent.state.last_seq == 1
    assert view.sign_in.isVisible() and not view.operator_bar.isVisible()
    screenshot(view, tmp_path, "sign-in.png")


async def test_a_right_password_unlocks_the_station_and_shows_who_signed_in(
    agent: Agent,
    view: StationView,
    people: People,
    gate: SignInController,
    controller: StationController,
    qtbot: QtBot,
    tmp_path: Path,
) -> None:
    view.show()
    for _ in range(20):
        await agent.sample_once()
        controller.refresh()

    assert await sign_in(qtbot, view, "ada") == ""

    assert not view.locked and view.operator_bar.isVisible()
    bar = view.operator_bar
    assert bar.who.text() == "Ada Lovelace (ada)"
    assert bar.roles.text() == "— Admin"
    assert bar.idle_note.text() == "signs out after 15 min without input"
    assert all(widget.isEnabled() for widget in bar.guarded)  # an Admin may do everything
    assert "ada signed in" in log_lines(agent)
    assert view.sign_in.password.text() == ""  # nothing typed stays behind the station
    for label in (bar.who, bar.roles, bar.idle_note):  # the whole text fits
        needed = label.fontMetrics().horizontalAdvance(label.text())
        assert label.contentsRect().width() >= needed, label.objectName()
    screenshot(view, tmp_path, "signed-in.png")

    bar.sign_out.click()
    assert view.locked
    assert view.sign_in.message.text() == ""
    assert "ada signed out" in log_lines(agent)


async def test_refusals_say_why(
    agent: Agent,
    view: StationView,
    people: People,
    gate: SignInController,
    qtbot: QtBot,
    tmp_path: Path,
) -> None:
    view.show()
    assert await sign_in(qtbot, view, "ada", "not her password") == "Wrong username or password."
    assert await sign_in(qtbot, view, "nobody") == "Wrong username or password."
    assert_not_squeezed(view)
    screenshot(view, tmp_path, "sign-in-refused.png")

    people.log.disable(people.vic)
    people.sync()
    assert await sign_in(qtbot, view, "vic") == "Disabled."
    assert view.locked
    assert any("sign-in as vic refused: disabled" in line for line in log_lines(agent))


async def test_a_replica_that_cannot_be_read_is_said_not_raised(
    view: StationView,
    people: People,
    gate: SignInController,
    qtbot: QtBot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object, **kwargs: object) -> sign_in_module.Person:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(sign_in_controller, "sign_in", broken)
    assert await sign_in(qtbot, view, "ada") == (
        "The sign-in could not be checked on this station: database disk image is malformed"
    )
    assert view.locked and view.sign_in.submit.isEnabled()  # ready for another try
    assert_not_squeezed(view)


async def test_empty_fields_are_refused_before_any_check(
    view: StationView, people: People, gate: SignInController, qtbot: QtBot
) -> None:
    assert await sign_in(qtbot, view, "ada", "") == "Enter your username and password."
    assert view.locked


async def test_a_row_of_failures_locks_the_name_until_a_local_time(
    view: StationView, people: People, gate: SignInController, qtbot: QtBot
) -> None:
    for _ in range(3):  # options: the third failure in a row locks
        assert await sign_in(qtbot, view, "olga", "guess") == "Wrong username or password."
    refusal = await sign_in(qtbot, view, "olga")  # the right password, too late
    assert LOCAL_TIME.fullmatch(refusal), refusal
    assert view.locked
    assert await sign_in(qtbot, view, "ada") == ""  # one locked name locks nobody else


async def test_the_password_is_checked_off_the_gui_thread(
    view: StationView,
    people: People,
    gate: SignInController,
    qtbot: QtBot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[threading.Thread] = []

    def spy(*args: object, **kwargs: object) -> sign_in_module.Person:
        threads.append(threading.current_thread())
        return sign_in_module.sign_in(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(sign_in_controller, "sign_in", spy)
    assert await sign_in(qtbot, view, "vic") == ""
    assert threads and threading.main_thread() not in threads


async def test_someone_disabled_while_signed_in_is_signed_out_at_the_next_check(
    agent: Agent, view: StationView, people: People, gate: SignInController, qtbot: QtBot
) -> None:
    assert await sign_in(qtbot, view, "olga") == ""
    await gate.check()
    assert not view.locked  # nothing changed: still in

    people.log.disable(people.olga)
    people.sync()
    await gate.check()

    assert view.locked
    assert view.sign_in.message.text() == "Signed out: your account was disabled."
    assert "olga signed out: your account was disabled" in log_lines(agent)


async def test_a_demotion_while_signed_in_greys_out_what_they_may_no_longer_do(
    view: StationView, people: People, gate: SignInController, qtbot: QtBot
) -> None:
    assert await sign_in(qtbot, view, "olga") == ""
    bar = view.operator_bar
    assert bar.replay_now.isEnabled() and not bar.users.isEnabled()
    assert bar.users.toolTip() == "needs the users:manage permission"

    people.log.grant_role(people.olga, "Operator", granted=False)
    people.log.grant_role(people.olga, "Viewer")
    people.sync()
    await gate.check()

    assert bar.roles.text() == "— Viewer"
    assert not bar.replay_now.isEnabled()
    assert bar.replay_now.toolTip() == "needs the commands:send permission"


async def test_no_input_for_the_idle_time_signs_out(
    agent: Agent,
    view: StationView,
    controller: StationController,
    people: People,
    qtbot: QtBot,
) -> None:
    options = WindowOptions(idle_minutes=0.002)  # 0.12 s
    gate = SignInController(view, agent.replica, options=options)
    try:
        assert await sign_in(qtbot, view, "vic") == ""
        assert gate.idle.running
        await until(lambda: view.locked)  # nobody touches anything
        assert view.sign_in.message.text() == "Signed out: no input for 0.002 min."
        assert not gate.idle.running
    finally:
        await gate.stop()


def test_input_restarts_the_idle_count(qapp: QApplication, qtbot: QtBot) -> None:
    window = QWidget()
    qtbot.addWidget(window)
    now = [100.0]
    watch = IdleWatch(60, watched=qapp, clock=lambda: now[0])
    fired: list[bool] = []
    watch.idle.connect(lambda: fired.append(True))
    watch.start()
    try:
        now[0] += 59
        watch.check()
        assert not fired
        qtbot.keyClick(window, "a")  # any input to any window of the application
        assert watch.idle_for() == 0
        now[0] += 59
        watch.check()
        assert not fired  # 118 s since start, but 59 since the key
        now[0] += 1
        watch.check()
        assert fired == [True]
        assert not watch.running
    finally:
        watch.stop()


def test_the_idle_time_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        WindowOptions(idle_minutes=0)
