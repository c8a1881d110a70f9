"""Command waiters: API callers long-polling a command, woken when it reaches an end state.

- A waiter is an ``asyncio.Event`` per caller, registered under its command's id; every
  committed move to an end state (``CommandChanged``, published on the database's bus after
  the commit) sets the events of that command. Nothing else is woken: a caller waits for
  the end, and a move it does not wait for costs it nothing.
- An event only says "read again": the caller re-reads the database, which stays the sole
  truth. A move made by another server replica comes through the fan-out (``wake``), at
  most once, so a caller also re-reads every ``REREAD_S`` on its own (``webui.api.commands``).
- At most ``MAX_WAITERS`` at once: past that ``watch`` hands out no event and the caller is
  told to come back (429), rather than a server holding an unbounded number of requests.
- A waiter is removed when its caller leaves: on return, on error and on cancellation.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from core.events import CommandChanged
from core.protocol.commands import TERMINAL

# Requests long-polling at once. Each is a parked coroutine (a few KB) that re-reads once a
# REREAD_S: 1000 of them cost ~1000 small reads a second at most, within one server's reach.
MAX_WAITERS = 1000
# A caller re-reads this often even if no event came: another replica's fan-out may be lost.
REREAD_S = 1.0


class CommandWaiters:
    """Who waits for which command to end; woken by committed moves to an end state."""

    def __init__(self, limit: int = MAX_WAITERS) -> None:
        self._limit = limit
        self._waiting: dict[uuid.UUID, set[asyncio.Event]] = {}
        self._count = 0

    def __len__(self) -> int:
        return self._count

    async def on_changed(self, event: CommandChanged) -> None:
        """A committed move: wake the callers waiting for this command, if it has ended."""
        self.wake(event)

    def wake(self, event: CommandChanged) -> None:
        """A committed move (here or on another replica): wake this command's callers, if ended."""
        if event.state in TERMINAL:
            for woken in self._waiting.get(event.command_id, ()):
                woken.set()

    @contextmanager
    def watch(self, command_id: uuid.UUID) -> Iterator[asyncio.Event | None]:
        """An event set when ``command_id`` ends, while inside; None if MAX_WAITERS wait."""
        if self._count >= self._limit:
            yield None
            return
        woken = asyncio.Event()
        self._waiting.setdefault(command_id, set()).add(woken)
        self._count += 1
        try:
            yield woken
        finally:
            self._count -= 1
            waiters = self._waiting[command_id]
            waiters.discard(woken)
            if not waiters:
                del self._waiting[command_id]
