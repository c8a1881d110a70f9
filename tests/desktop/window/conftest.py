"""Offscreen Qt, and a real station agent whose broker is a closed port on loopback."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any QApplication exists: no display here

import gc
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from core.mqtt.endpoint import Endpoint
from desktop.agent.agent import Agent, AgentConfig
from desktop.agent.outbox import CapPolicy
from desktop.agent.sources import Simulated
from desktop.window.station_controller import StationController
from desktop.window.station_view import StationView

DEVICE = "press-07"


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
def view(qtbot: QtBot) -> StationView:
    """The station window, closed by pytest-qt after the test."""
    window = StationView()
    qtbot.addWidget(window)
    return window


@pytest.fixture
def controller(agent: Agent, view: StationView) -> Iterator[StationController]:
    """The controller binding the window to the agent."""
    binding = StationController(agent, view)
    yield binding
    binding.close()
