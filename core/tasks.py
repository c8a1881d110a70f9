"""Tasks and listeners: stopping asyncio tasks for sure, holding fire-and-forget tasks, and
telling listeners of events.

On Python 3.11, ``asyncio.wait_for`` returns its result instead of raising when a
cancellation lands in the same loop turn as the awaited future completes (CPython
gh-86296, fixed in 3.12). aiomqtt awaits every publish and subscribe through it, so one
``cancel()`` of a task that publishes can be lost and the task runs on: a station's stop
then waits forever. Cancelling until the task has ended closes that hole.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)
E = TypeVar("E")
T = TypeVar("T")

RETRY_S = 0.5  # how long to wait for a cancelled task before cancelling it again


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], *, retry_s: float = RETRY_S) -> None:
    """Cancel ``tasks`` and return once every one has ended, cancelling again as needed.

    ``retry_s`` must leave a task time for its own clean-up (a graceful disconnect, say)
    before a second cancellation interrupts it. An exception a task ended with (other than
    its cancellation) is raised, as awaiting it would.
    """
    tasks = list(tasks)
    pending = {task for task in tasks if not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=retry_s)
    for task in tasks:
        if not task.cancelled():
            task.result()


class Listeners(Generic[E]):
    """Callbacks told of each event, in the order they were added.

    A listener that raises is logged and the others are still told: one broken window or
    page must never stop the link, the ingest or the station it listens to.
    """

    def __init__(self, name: str) -> None:
        self.name = name  # says in the log whose listener failed
        self._listeners: list[Callable[[E], None]] = []

    def add(self, listener: Callable[[E], None]) -> Callable[[], None]:
        """Call ``listener`` with every event; returns the function that removes it."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def emit(self, event: E) -> None:
        """Tell every listener (a copy of the list: a listener may remove itself)."""
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("%s listener failed", self.name)

    def __len__(self) -> int:
        return len(self._listeners)


class TaskSet:
    """Tasks started and not awaited, held until they end.

    The event loop keeps only weak references to tasks, so a task nobody holds may be
    collected mid-flight; this set holds each one until it is done, logs a failure nobody
    would otherwise see, and cancels what is left, for sure, on ``cancel``.
    """

    def __init__(self, name: str) -> None:
        self.name = name  # says in the log whose task failed
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
        """Run ``work`` in the background; returns its task."""
        task = asyncio.get_running_loop().create_task(work, name=name or self.name)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("%s task %s failed", self.name, task.get_name(), exc_info=error)

    async def join(self) -> None:
        """Wait until every task has ended, those spawned meanwhile included."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def cancel(self) -> None:
        """Cancel every task still running and wait until each has ended."""
        tasks, self._tasks = set(self._tasks), set()
        pending = [task for task in tasks if not task.done()]
        await cancel_and_wait(pending)

    def __len__(self) -> int:
        return len(self._tasks)
