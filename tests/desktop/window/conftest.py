"""Offscreen Qt, and a real station agent whose broker is a closed port on loopback; its
replica holds the people of ``tests.desktop.replica_data``, as the server's pages bring them."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any QApplication exists: no display here

import asyncio
import gc
import shutil
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from core.mqtt.endpoint import Endpoint
from desktop.agent.agent import Agent, AgentConfig
from desktop.agent.outbox import CapPolicy
from desktop.agent.sources import Simulated
from desktop.window.appearance import apply
from desktop.window.operator_actions import OperatorActions
from desktop.window.options import WindowOptions
from desktop.window.sign_in_controller import SignInController
from desktop.window.station_controller import StationController
from desktop.window.station_view import StationView
from desktop.window.theme import Theme, chosen_scheme, theme_for
from tests.desktop.replica_data import PASSWORD, ServerLog

DEVICE = "press-07"
SHOTS = Path("/tmp/s5-shots")  # every screenshot is copied here too, to look at
OPERATOR = "Operator"  # a role for the shop floor: replay and interval, no users


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def station_config(
    data_dir: Path, *, max_rows: int = 10_000, policy: CapPolicy = CapPolicy.DROP_OLDEST
) -> AgentConfig:
    """A station whose broker cannot be reached, sampling every 50 ms."""
    endpoint = Endpoint("127.0.0.1", closed_port(), username=DEVICE, password="unused")
    return AgentConfig(
        DEVICE, endpoint, data_dir, interval_s=0.05, max_rows=max_rows, policy=policy
    )


@pytest.fixture(autouse=True)
def theme(qapp: QApplication) -> Iterator[Theme]:
    """Every window test sees the window as a person does, in its theme: light, or the one
    PP_WINDOW_THEME forces (``PP_WINDOW_THEME=dark pytest tests/desktop/window`` takes every
    screenshot in dark). A test that switches theme cannot leave it on for the next."""
    theme = theme_for(chosen_scheme(), system_is_dark=False)
    apply(qapp, theme)
    yield theme
    apply(qapp, theme)


@pytest.fixture(autouse=True)
def _delete_widgets_on_the_gui_thread() -> Iterator[None]:
    """Free the test's closed widgets now: left to the garbage collector, a widget may be
    freed on a worker thread of a later test (the agent's), and Qt crashes."""
    yield
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)  # pytest-qt's deleteLater
    gc.collect()


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[Agent]:
    """A real agent with its outbox in tmp_path, not started."""
    station = Agent(station_config(tmp_path), [Simulated(seed=7)])
    yield station
    await station.stop()


@pytest.fixture
def view(qtbot: QtBot, theme: Theme) -> StationView:
    """The station window in the tests' theme, closed by pytest-qt after the test."""
    window = StationView(theme)
    qtbot.addWidget(window)
    return window


@pytest.fixture
def controller(agent: Agent, view: StationView) -> Iterator[StationController]:
    """The controller binding the window to the agent."""
    binding = StationController(agent, view)
    yield binding
    binding.close()


async def until(check: Callable[[], bool], within: float = 10.0) -> None:
    """Wait until ``check()`` holds, running Qt's events and asyncio's tasks alike (as the
    window's qasync loop does); fail the test after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not check():
            QApplication.processEvents()
            await asyncio.sleep(0.005)


def screenshot(widget: QWidget, tmp_path: Path, name: str) -> Path:
    """Grab ``widget`` as painted to ``tmp_path/name`` (and a copy under SHOTS)."""
    QApplication.processEvents()
    shot = tmp_path / name
    assert widget.grab().save(str(shot))
    SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SHOTS / name)
    return shot


class People:
    """The server's log of people and roles, and the replica it is applied to."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.log = ServerLog(DEVICE).builtins()
        self.log.role(OPERATOR, ["telemetry:read", "devices:read", "commands:send", "config:write"])
        self.ada = self.log.user("ada", roles=("Admin",), display_name="Ada Lovelace")
        self.olga = self.log.user("olga", roles=(OPERATOR,), display_name="Olga Nowak")
        self.vic = self.log.user("vic", roles=("Viewer",), display_name="Victor Hugo")
        self.sync()

    def sync(self) -> None:
        """Apply what the server logged since the replica's cursor, as pages would."""
        replica = self.agent.replica
        for page in self.log.pages(after=replica.cursor):
            assert replica.apply_page(page)


@pytest.fixture
def people(agent: Agent) -> People:
    """Ada (Admin), Olga (Operator) and Victor (Viewer) in the agent's replica."""
    return People(agent)


@pytest.fixture
def options() -> WindowOptions:
    """The window's rules; lockout after 3 failures."""
    return WindowOptions(max_failures=3, lock_seconds=60)


@pytest.fixture
async def gate(
    agent: Agent, view: StationView, controller: StationController, options: WindowOptions
) -> AsyncIterator[SignInController]:
    """The sign-in controller over the agent's replica, the window locked."""
    locking = SignInController(view, agent.replica, options=options, note=agent.events.record)
    yield locking
    await locking.stop()


@pytest.fixture
async def actions(agent: Agent, gate: SignInController) -> AsyncIterator[OperatorActions]:
    """The operator bar's actions."""
    bound = OperatorActions(agent, gate)
    yield bound
    await bound.stop()


async def sign_in(qtbot: QtBot, view: StationView, username: str, password: str = PASSWORD) -> str:
    """Type and submit the sign-in form as a person would; what the window then says."""
    form = view.sign_in
    form.username.clear()
    form.message.clear()
    qtbot.keyClicks(form.username, username)
    qtbot.keyClicks(form.password, password)
    qtbot.mouseClick(form.submit, Qt.MouseButton.LeftButton)
    await until(lambda: form.submit.isEnabled() and (not view.locked or bool(form.message.text())))
    return "" if not view.locked else form.message.text()
