"""The station window's composition root: Qt application, qasync loop, agent, view, controllers."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Sequence

import qasync
import shiboken6
from PySide6.QtWidgets import QApplication

from desktop.agent.agent import Agent, AgentConfig
from desktop.agent.sources import Source
from desktop.window.appearance import ThemeFollower
from desktop.window.operator_actions import OperatorActions
from desktop.window.options import WindowOptions
from desktop.window.sign_in_controller import SignInController
from desktop.window.station_controller import StationController
from desktop.window.station_view import StationView

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_window(
    config: AgentConfig, sources: Sequence[Source], options: WindowOptions | None = None
) -> int:
    """Run the agent with its window until the window closes (or SIGINT/SIGTERM); exit code."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("PrecisionPulse station")
    quits = QApplication.quitOnLastWindowClosed()
    # The loop must outlive the window: closing it only starts the agent's clean stop.
    QApplication.setQuitOnLastWindowClosed(False)
    try:
        qasync.run(station(config, sources, options or WindowOptions()))
    finally:
        QApplication.setQuitOnLastWindowClosed(quits)
    return 0


async def station(config: AgentConfig, sources: Sequence[Source], options: WindowOptions) -> None:
    """Show the window, locked until someone signs in, over a started agent; when it closes,
    stop the agent with its farewell."""
    app = QApplication.instance()
    assert isinstance(app, QApplication)  # run_window made it
    themes = ThemeFollower(app, options.scheme)
    agent = Agent(config, sources)
    view = StationView(themes.theme)
    themes.changed.connect(view.apply_theme)
    controller = StationController(agent, view)
    gate = SignInController(view, agent.replica, options=options, note=agent.events.record)
    actions = OperatorActions(agent, gate)
    closed = asyncio.Event()
    controller.closed.connect(closed.set)
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, view.close)
    try:
        view.show()
        await agent.start()
        await closed.wait()
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
        controller.close()
        await actions.stop()
        await gate.stop()
        view.hide()
        themes.stop()
        await agent.stop()
        # Freed by the garbage collector, a widget may die on whichever thread allocates next
        # (an agent worker), and Qt crashes: delete the window here, on the GUI thread.
        shiboken6.delete(view)
