"""Keeps the station window in step with the agent: a 5 Hz pull of state, events as they come."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QTimer, Signal

from desktop.agent.agent import Agent, AgentEvent
from desktop.window.link_badge import badge_for
from desktop.window.series import Series
from desktop.window.station_view import StationView
from desktop.window.sync_badge import sync_words

REFRESH_MS = 200  # 5 Hz: smooth to the eye, and the cost does not grow with the sample rate
LOG_LINES = 500  # event log lines kept in the window; the agent keeps its own 200


class StationController(QObject):
    """Pulls the agent's state into the view on a timer and logs the agent's events."""

    closed = Signal()  # the window was closed: the app stops the agent

    def __init__(self, agent: Agent, view: StationView, *, refresh_ms: int = REFRESH_MS) -> None:
        super().__init__(view)
        self.agent = agent
        self.view = view
        self.series = Series()
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._shown_seq = -1  # the sample on screen; -1 so the first refresh draws
        self._show_config()
        for event in agent.state.events:  # what happened before the window opened
            self.log(event)
        self._remove_listener: Callable[[], None] | None = agent.add_listener(self.log)
        self.timer = QTimer(self)
        self.timer.setInterval(refresh_ms)
        self.timer.timeout.connect(self.refresh)
        view.installEventFilter(self)
        self.refresh()
        self.timer.start()

    def _show_config(self) -> None:
        config, view = self.agent.config, self.view
        title = f"PrecisionPulse station — {config.device_id}"
        view.setWindowTitle(title)
        view.title.setText(config.device_id)
        view.config_device.setText(config.device_id)
        view.config_broker.setText(str(config.endpoint))
        policy = config.policy.value.replace("_", " ")
        view.config_cap.setText(f"{config.max_rows:,} rows, then {policy}")
        view.config_outbox.setText(str(config.outbox_path))
        view.config_stream.setText(self.agent.state.stream)
        self._show_settings()

    def _show_settings(self) -> None:
        """What the configuration in effect says (it changes when the server sends one)."""
        state, view = self.agent.state, self.view
        self._shown_version = state.config_version
        view.config_interval.setText(
            f"{state.interval_s:g} s between samples, a heartbeat every {state.heartbeat_s} s"
        )
        view.config_version.setText(
            f"version {state.config_version}, signed by the server"
            if state.config_version
            else "none received yet: the station's own settings"
        )
        for channel in self._curves:  # the configuration may bring, change or drop a unit
            view.set_unit(channel, self._unit(channel))

    def _unit(self, channel: str) -> str:
        """A channel's unit, if the configuration in effect gives one."""
        units = self.agent.state.settings.get("units")
        unit = units.get(channel) if isinstance(units, dict) else None
        return unit if isinstance(unit, str) else ""

    def refresh(self) -> None:
        """Show the agent's state as it is now (the timer calls this ~5 times a second)."""
        state, view = self.agent.state, self.view
        badge = badge_for(state.link)
        view.show_badge(badge.text, badge.tone)
        view.show_sync(*sync_words(state))
        view.since.setText(badge.since)
        view.link_detail.setText(badge.detail)
        view.last_seq.setText(str(state.last_seq) if state.last_seq else "—")
        view.acked_seq.setText(str(state.acked_seq) if state.acked_seq else "—")
        view.outbox_depth.setText(f"{state.depth:,} rows")
        view.dropped.setText(f"{state.dropped:,}")
        view.refused.setText(f"{state.refused:,}")
        self._show_replay(state.replay_total, state.replay_sent)
        if state.config_version != self._shown_version:
            self._show_settings()
        if state.last_seq != self._shown_seq:
            self._shown_seq = state.last_seq
            view.values_model.set_values(state.values)
            if state.last_ts:
                self._plot(state.last_ts)

    def _show_replay(self, total: int, sent: int) -> None:
        bar = self.view.replay
        if total <= 0:
            bar.setRange(0, 1)
            bar.setValue(0)
            bar.setFormat("nothing to replay")
            return
        bar.setRange(0, total)
        bar.setValue(min(sent, total))  # a resend after a stalled ack counts again
        bar.setFormat("%v of %m sent")

    def _plot(self, ts_ms: int) -> None:
        for channel in self.series.add(ts_ms, self.agent.state.values):
            self._curves[channel] = self.view.add_curve(channel, self._unit(channel))
        for channel, curve in self._curves.items():
            curve.setData(*self.series.points(channel))

    def log(self, event: AgentEvent) -> None:
        """Put one agent event at the top of the event log."""
        at = datetime.fromtimestamp(event.at)
        self.view.events.insertItem(0, f"{at:%H:%M:%S}  {event.kind:<7} {event.text}")
        while self.view.events.count() > LOG_LINES:
            self.view.events.takeItem(self.view.events.count() - 1)

    def close(self) -> None:
        """Stop refreshing and stop listening to the agent (safe to call twice)."""
        self.timer.stop()
        self.view.removeEventFilter(self)
        remove, self._remove_listener = self._remove_listener, None
        if remove is not None:
            remove()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Notice the window closing; the window still closes as usual."""
        if watched is self.view and event.type() == QEvent.Type.Close:
            self.close()
            self.closed.emit()
        return False
