"""The bar's sampling interval follows the configuration, and an override sent up ends in
words: in effect, refused by the server (with its reason), or overtaken there."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from core.protocol import topics
from core.protocol.station_config import DesiredConfig
from core.protocol.sync import Answer, Answers
from desktop.agent.agent import Agent
from desktop.window.operator_actions import OperatorActions
from desktop.window.station_view import StationView
from tests.desktop.window.conftest import DEVICE, People, screenshot, sign_in, until

# What the server answers an override from someone who lacked the permission at its stamp
# (core.services.sync_inbox).
LACKED = "changing the sampling interval needs config:write, which 'olga' lacked"


def click(widget: QWidget) -> None:
    """A left click on a button."""
    QtBot.mouseClick(widget, Qt.MouseButton.LeftButton)


async def answer(agent: Agent, *answers: Answer) -> None:
    """The server's answers arrive on the station's sync/down, as its real sync handles them."""
    down = next(r for r in agent.sync.routes() if r.topic_filter == topics.sync_down(DEVICE))
    await down.handle(Answers(DEVICE, answers))


async def send(view: StationView, actions: OperatorActions, seconds: float) -> None:
    """Type an interval and press Set interval, as an operator does."""
    bar = view.operator_bar
    bar.interval.setValue(seconds)
    click(bar.set_interval)
    await until(lambda: actions.waiting_for == seconds)
    await actions.interval.tasks.join()  # its first look for the server's answer


async def test_the_box_follows_a_new_configuration_unless_the_operator_is_at_it(
    agent: Agent, view: StationView, people: People, actions: OperatorActions, qtbot: QtBot
) -> None:
    assert await sign_in(qtbot, view, "olga") == ""
    box = view.operator_bar.interval
    assert box.value() == 0.05  # the station's own interval, as nothing else is in effect

    await agent.configuration.on_desired(DesiredConfig(DEVICE, 4, {"interval_s": 2.0}))
    assert box.value() == 2.0

    box.setValue(3.0)  # typed, not sent: the next configuration leaves it alone
    await agent.configuration.on_desired(DesiredConfig(DEVICE, 5, {"interval_s": 1.5}))
    assert box.value() == 3.0
    assert agent.state.interval_s == 1.5

    box.setValue(1.5)  # back to what is in effect now: nothing of theirs to keep
    await agent.configuration.on_desired(DesiredConfig(DEVICE, 6, {"interval_s": 4.0}))
    assert box.value() == 4.0

    view.show()
    view.activateWindow()
    box.setFocus()
    await until(box.hasFocus)  # at the box, even unchanged: theirs
    await agent.configuration.on_desired(DesiredConfig(DEVICE, 7, {"interval_s": 5.0}))
    assert box.value() == 4.0
    view.operator_bar.sign_out.setFocus()
    await until(lambda: not box.hasFocus())
    await agent.configuration.on_desired(DesiredConfig(DEVICE, 8, {"interval_s": 6.0}))
    assert box.value() == 6.0


async def test_a_refused_override_is_said_with_the_servers_reason(
    agent: Agent,
    view: StationView,
    people: People,
    actions: OperatorActions,
    qtbot: QtBot,
    tmp_path: Path,
) -> None:
    assert await sign_in(qtbot, view, "olga") == ""
    bar = view.operator_bar
    await send(view, actions, 2.0)
    assert bar.message.text() == "Interval 2 s sent: waiting for the server."
    (edit,) = agent.replica.pending()

    await answer(agent, Answer(edit.change_id, False, LACKED))
    await until(lambda: actions.waiting_for is None)

    assert bar.message.text() == (
        "The server refused the 2 s interval: Changing the sampling interval needs"
        " config:write, which 'olga' lacked. The interval in effect is 0.05 s."
    )
    assert bar.interval.value() == 0.05  # back to what the station runs
    assert agent.replica.pending() == []  # reverted by the sync
    view.resize(1100, 720)
    view.show()
    qtbot.waitExposed(view)
    screenshot(view, tmp_path, "interval-refused.png")
    needed = bar.message.heightForWidth(bar.message.width())
    assert bar.message.height() >= needed  # the whole sentence shows


async def test_an_accepted_override_waits_for_its_configuration(
    agent: Agent, view: StationView, people: People, actions: OperatorActions, qtbot: QtBot
) -> None:
    assert await sign_in(qtbot, view, "olga") == ""
    await send(view, actions, 2.0)
    (edit,) = agent.replica.pending()
    people.log.set("device_config", DEVICE, **{"desired.interval_s": 2.0})  # the server took it
    people.sync()
    await answer(agent, Answer(edit.change_id, True))
    await until(lambda: agent.replica.pending() == [])
    await actions.interval.look_for_answer()
    assert actions.waiting_for == 2.0  # accepted, not in effect yet: still waiting

    await agent.configuration.on_desired(DesiredConfig(DEVICE, 4, {"interval_s": 2.0}))
    assert actions.waiting_for is None
    assert view.operator_bar.message.text() == "Interval 2 s in effect (configuration version 4)."


async def test_an_override_overtaken_on_the_server_is_said_when_its_configuration_comes(
    agent: Agent, view: StationView, people: People, actions: OperatorActions, qtbot: QtBot
) -> None:
    assert await sign_in(qtbot, view, "olga") == ""
    await send(view, actions, 2.0)
    (edit,) = agent.replica.pending()
    await answer(agent, Answer(edit.change_id, True))  # accepted, then someone's later 5 s won
    people.log.set("device_config", DEVICE, **{"desired.interval_s": 5.0})
    people.sync()

    await agent.configuration.on_desired(DesiredConfig(DEVICE, 5, {"interval_s": 5.0}))
    await until(lambda: actions.waiting_for is None)
    assert view.operator_bar.message.text() == (
        "The 2 s interval sent did not take effect: a later change won on the server."
        " The interval in effect is 5 s."
    )
    assert view.operator_bar.interval.value() == 5.0


async def test_signing_out_forgets_the_wait(
    agent: Agent, view: StationView, people: People, actions: OperatorActions, qtbot: QtBot
) -> None:
    assert await sign_in(qtbot, view, "olga") == ""
    await send(view, actions, 2.0)
    (edit,) = agent.replica.pending()
    view.operator_bar.sign_out.click()
    await answer(agent, Answer(edit.change_id, False, LACKED))
    assert actions.waiting_for is None
    assert await sign_in(qtbot, view, "ada") == ""
    assert view.operator_bar.message.text() == ""  # not told of olga's refusal
