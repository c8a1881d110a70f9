"""Notices when nobody has touched the station for a while: no mouse, keyboard or touch input."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QTimer, Signal

CHECK_MS_MAX = 5_000  # look at least this often; a sign-out may come this much late
INPUT = frozenset(
    {
        QEvent.Type.MouseButtonPress,
        QEvent.Type.MouseMove,
        QEvent.Type.Wheel,
        QEvent.Type.KeyPress,
        QEvent.Type.TouchBegin,
        QEvent.Type.TouchUpdate,
    }
)


class IdleWatch(QObject):
    """Emits ``idle`` once when no input has reached the application for ``idle_s``.

    It watches every window of the application (an open dialog counts), from ``start``
    until ``stop``. ``clock`` is the monotonic clock the idle time is measured on.
    """

    idle = Signal()

    def __init__(
        self,
        idle_s: float,
        *,
        watched: QObject,
        clock: Callable[[], float] = time.monotonic,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        if idle_s <= 0:
            msg = f"the idle time must be positive: {idle_s}"
            raise ValueError(msg)
        self.idle_s = idle_s
        self._watched = watched  # the QApplication: input to any of its windows counts
        self._clock = clock
        self._last_input = clock()
        self._timer = QTimer(self)
        self._timer.setInterval(min(CHECK_MS_MAX, max(1, int(idle_s * 1000 / 4))))
        self._timer.timeout.connect(self.check)

    @property
    def running(self) -> bool:
        """Whether it is watching."""
        return self._timer.isActive()

    def start(self) -> None:
        """Count idle time from now."""
        self._last_input = self._clock()
        self._watched.installEventFilter(self)
        self._timer.start()

    def stop(self) -> None:
        """Stop watching (safe to call twice)."""
        self._timer.stop()
        self._watched.removeEventFilter(self)

    def idle_for(self) -> float:
        """Seconds since the last input."""
        return self._clock() - self._last_input

    def check(self) -> None:
        """Emit ``idle`` (and stop) if the idle time has passed."""
        if self.running and self.idle_for() >= self.idle_s:
            self.stop()
            self.idle.emit()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Any input restarts the count; the event goes on as usual."""
        if event.type() in INPUT:
            self._last_input = self._clock()
        return False
