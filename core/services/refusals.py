"""Permission refusals (403) in the audit log, rate-limited so a caller cannot flood it.

At most one ``access.denied`` entry per caller and route a minute. The refusals a process
folds in between are counted, and the next entry for that caller and route says how many it
stands for (``refusals``). Two guards, both atomic:

- in the process, a check-and-set with no ``await`` inside, so of requests refused at once
  exactly one goes on to write; the others only count (the count is per process);
- in the database, under the audit log's writer lock, a look for an entry of the window,
  so server replicas (each with its own memory) still write one entry a window between them.

The refusal itself never waits on or fails with its audit entry: the caller answers 403
whatever happens here (``refuse`` writes in a task, which logs a failed write). A server
stopping waits for the entries still being written (``settled``) before its last checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from datetime import datetime, timedelta

from core.db.engine import Database
from core.db.types import utcnow
from core.services import audit

ACTION = "access.denied"
# Long enough that a client hammering a forbidden route writes one entry a minute, not
# thousands; short enough that a person reading the log sees a refusal within the minute.
WINDOW = timedelta(minutes=1)
# Keys are (actor, route), both bounded (signed-in users, route templates); past this many
# the expired ones are dropped, so memory stays small whatever a caller tries.
_PRUNE_ABOVE = 10_000
_TARGET_LEN = 128  # AuditEntry.target_id's length

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (actor, route)


class RefusalWindows:
    """One process's windows: when each (actor, route) last wrote, and what it folded since."""

    def __init__(self) -> None:
        self._opened: dict[Key, datetime] = {}
        self._folded: dict[Key, int] = {}

    def admit(self, key: Key, now: datetime) -> int | None:
        """The refusals an entry written now stands for, or None: folded into the window's.

        No ``await`` here: under one event loop this check-and-set is atomic.
        """
        opened = self._opened.get(key)
        if opened is not None and now - opened < WINDOW:
            self._folded[key] = self._folded.get(key, 0) + 1
            return None
        if len(self._opened) > _PRUNE_ABOVE:
            self._prune(now)
        self._opened[key] = now
        return self._folded.pop(key, 0) + 1

    def fold(self, key: Key, refusals: int) -> None:
        """Keep ``refusals`` for the next entry: another replica wrote this window's."""
        self._folded[key] = self._folded.get(key, 0) + refusals

    def _prune(self, now: datetime) -> None:
        for key, opened in list(self._opened.items()):
            if now - opened >= WINDOW and not self._folded.get(key):
                del self._opened[key]


_windows: weakref.WeakKeyDictionary[Database, RefusalWindows] = weakref.WeakKeyDictionary()


_pending: set[asyncio.Task[bool]] = set()


def refuse(database: Database, *, actor: str, permission: str, route: str) -> None:
    """Audit that ``actor`` was refused ``permission`` on ``route``, unless this window has it.

    ``route`` is the route's template (``GET /api/v1/users/{user_id}``) or a page's path, so
    varying an id does not open new windows. The entry is written by a task of its own,
    after the caller answers: the caller still holds its request's connection, and waiting
    for a second one while holding the first would, with enough refusals at once, leave the
    whole pool waiting on itself. Never raises.
    """
    windows = _windows.setdefault(database, RefusalWindows())
    now = utcnow()
    key = (actor, route[:_TARGET_LEN])
    refusals = windows.admit(key, now)
    if refusals is None:
        return
    task = asyncio.create_task(_write(database, windows, key, permission, refusals, now))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def settled() -> None:
    """Wait until the refusals being written are (tests; a server stopping)."""
    while _pending:
        await asyncio.gather(*_pending)


async def _write(
    database: Database,
    windows: RefusalWindows,
    key: Key,
    permission: str,
    refusals: int,
    now: datetime,
) -> bool:
    """Write the window's entry unless another replica did; whether it wrote. Never raises."""
    actor, route = key
    try:
        async with database.session() as session:
            await audit.lock(session)
            if await audit.has_since(
                session, action=ACTION, actor=actor, target_id=route, since=now - WINDOW
            ):
                windows.fold(key, refusals)
                return False
            await audit.record(
                session,
                actor=actor,
                action=ACTION,
                target_type="route",
                target_id=route,
                after={"permission": permission, "refusals": refusals},
            )
    except Exception:
        log.exception("could not audit the refusal of %r to %s on %s", permission, actor, route)
        windows.fold(key, refusals)
        return False
    return True
