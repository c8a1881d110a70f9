"""Hybrid logical clock: the ``updated_at`` of every synced row.

A stamp is ``<wall ms, 15 digits>.<counter, 6 digits>.<node id>``: comparing stamps as
strings orders them by wall time, then counter, then node, so skewed clocks and ties
still order deterministically on every replica.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

WALL_DIGITS = 15  # milliseconds until the year 33658
COUNTER_DIGITS = 6  # a million events in one millisecond before the wall must move


@dataclass(frozen=True, order=True)
class Stamp:
    """One HLC timestamp."""

    wall_ms: int
    counter: int
    node: str

    def __post_init__(self) -> None:
        if not 0 <= self.wall_ms < 10**WALL_DIGITS or not 0 <= self.counter < 10**COUNTER_DIGITS:
            msg = f"HLC stamp out of range: {self.wall_ms}.{self.counter}"
            raise ValueError(msg)
        if not self.node or "." in self.node:
            msg = f"HLC node id must be non-empty and free of dots: {self.node!r}"
            raise ValueError(msg)

    def __str__(self) -> str:
        return f"{self.wall_ms:0{WALL_DIGITS}d}.{self.counter:0{COUNTER_DIGITS}d}.{self.node}"

    @classmethod
    def parse(cls, text: str) -> Stamp:
        """Read a stamp written by ``str()``."""
        wall, counter, node = text.split(".", 2)
        return cls(int(wall), int(counter), node)


def wall_time(stamp: str) -> datetime:
    """The wall time a stamp was made at (UTC); ValueError if ``stamp`` is not one."""
    wall_ms = Stamp.parse(stamp).wall_ms
    try:
        return datetime.fromtimestamp(wall_ms / 1000, UTC)
    except OverflowError:  # past datetime's year 9999 on platforms that say so this way
        msg = f"HLC stamp past the year 9999: {stamp}"
        raise ValueError(msg) from None


class Clock:
    """Issues stamps that never go backwards, even when the wall clock does."""

    def __init__(self, node: str, wall: Callable[[], int] | None = None) -> None:
        self._node = node
        self._wall = wall or (lambda: time.time_ns() // 1_000_000)
        self._last = Stamp(0, 0, node)
        self._lock = threading.Lock()

    def now(self) -> str:
        """A stamp later than every stamp this clock issued or observed."""
        with self._lock:
            wall = self._wall()
            if wall > self._last.wall_ms:
                self._last = Stamp(wall, 0, self._node)
            elif self._last.counter + 1 < 10**COUNTER_DIGITS:
                self._last = Stamp(self._last.wall_ms, self._last.counter + 1, self._node)
            else:
                # The counter is full (a remote stamp or a stuck clock): borrow a millisecond.
                self._last = Stamp(self._last.wall_ms + 1, 0, self._node)
            return str(self._last)

    def observe(self, remote: str) -> None:
        """Move past a stamp received from another replica."""
        other = Stamp.parse(remote)
        with self._lock:
            if (other.wall_ms, other.counter) > (self._last.wall_ms, self._last.counter):
                self._last = Stamp(other.wall_ms, other.counter, self._node)


_process_clock = Clock("server")


def configure(node: str) -> None:
    """Name this process's replica (the server, or a station's device id)."""
    global _process_clock
    _process_clock = Clock(node)


def now() -> str:
    """A fresh stamp from this process's clock."""
    return _process_clock.now()


def observe(remote: str) -> None:
    """Move this process's clock past a stamp received from another replica."""
    _process_clock.observe(remote)
