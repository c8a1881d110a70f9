"""Stopping asyncio tasks for sure.

On Python 3.11, ``asyncio.wait_for`` returns its result instead of raising when a
cancellation lands in the same loop turn as the awaited future completes (CPython
gh-86296, fixed in 3.12). aiomqtt awaits every publish and subscribe through it, so one
``cancel()`` of a task that publishes can be lost and the task runs on: a station's stop
then waits forever. Cancelling until the task has ended closes that hole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

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
