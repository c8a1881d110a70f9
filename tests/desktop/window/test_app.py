"""The whole station window run for real: qasync loop, agent, window, and a clean stop."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import aiomqtt
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from core.mqtt.endpoint import Endpoint
from core.protocol import topics
from core.protocol.messages import Status
from desktop.agent.agent import AgentConfig
from desktop.agent.outbox import Outbox
from desktop.agent.sources import Simulated
from desktop.window.app import run_window
from desktop.window.station_view import StationView
from tests.desktop.window.conftest import DEVICE, station_config
from tests.mqtt.broker import DEVICES, SERVER, RunningBroker

WITHIN = 15.0  # seconds the window may take to connect and sample before the test gives up


def when_window(ready: Callable[[StationView], bool], then: Callable[[StationView], None]) -> None:
    """Once the station window shows and ``ready`` holds, call ``then``; close it after WITHIN."""
    deadline = time.monotonic() + WITHIN

    def poll() -> None:
        views = [w for w in QApplication.topLevelWidgets() if isinstance(w, StationView)]
        shown = [view for view in views if view.isVisible()]
        if shown and ready(shown[0]):
            then(shown[0])
        elif time.monotonic() > deadline:
            for view in views:
                view.close()  # the test fails on what it then finds, instead of hanging
        else:
            QTimer.singleShot(50, poll)

    QTimer.singleShot(50, poll)


async def retained_status(broker: RunningBroker) -> Status:
    """The station's retained status as a fresh client sees it."""
    async with aiomqtt.Client(
        "127.0.0.1", broker.port, username=SERVER[0], password=SERVER[1]
    ) as client:
        await client.subscribe(topics.status(DEVICE), qos=1)
        async with asyncio.timeout(5):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                status = Status.parse(message.payload, DEVICE)
                assert isinstance(status, Status)
                return status
    raise AssertionError("unreachable")


def sampled(config: AgentConfig) -> int:
    """How many samples the station committed (its outbox must be closed and reopenable)."""
    outbox = Outbox(config.outbox_path, max_rows=config.max_rows, policy=config.policy)
    try:
        return outbox.next_seq - 1
    finally:
        outbox.close()


def test_closing_the_window_says_a_clean_goodbye(
    mosquitto: RunningBroker, tmp_path: Path, qapp: QApplication
) -> None:
    endpoint = Endpoint("127.0.0.1", mosquitto.port, username=DEVICE, password=DEVICES[DEVICE])
    config = AgentConfig(DEVICE, endpoint, tmp_path, interval_s=0.05)
    badges: list[str] = []
    streams: list[str] = []

    def close(view: StationView) -> None:
        badges.append(view.badge.text())
        streams.append(view.config_stream.text())
        view.close()

    def live(view: StationView) -> bool:
        return view.badge.text() == "connected" and view.last_seq.text() != "—"

    when_window(live, close)
    assert run_window(config, [Simulated(seed=2)]) == 0

    assert badges == ["connected"]
    assert sampled(config) > 0
    farewell = Status(DEVICE, "offline", "clean", stream=streams[0])  # the window's station
    assert asyncio.run(retained_status(mosquitto)) == farewell
    assert qapp.quitOnLastWindowClosed()  # put back as it was


def test_sigterm_closes_the_window_and_stops_the_agent(tmp_path: Path, qapp: QApplication) -> None:
    config = station_config(tmp_path)  # no broker: the link keeps reconnecting
    when_window(
        lambda view: view.last_seq.text() not in ("—", "1"),
        lambda view: os.kill(os.getpid(), signal.SIGTERM),
    )
    assert run_window(config, [Simulated(seed=2)]) == 0

    assert sampled(config) >= 2
    assert not any(w.isVisible() for w in qapp.topLevelWidgets())


def test_the_window_opens_locked_and_samples_behind_the_sign_in(
    tmp_path: Path, qapp: QApplication
) -> None:
    config = station_config(tmp_path)
    seen: list[tuple[bool, bool]] = []

    def close(view: StationView) -> None:
        seen.append((view.locked, view.sign_in.isVisible()))
        view.close()

    when_window(lambda view: view.last_seq.text() not in ("—", "1"), close)
    assert run_window(config, [Simulated(seed=2)]) == 0

    assert seen == [(True, True)]  # nobody signed in, the station sampled all the same
    assert sampled(config) >= 2
