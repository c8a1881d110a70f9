"""Stopping tasks for sure, even when a cancellation is swallowed once."""

from __future__ import annotations

import asyncio

import pytest

from core.tasks import cancel_and_wait


async def test_a_task_that_swallows_a_cancellation_is_still_stopped() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:  # as 3.11's wait_for does when its future completes
                if swallowed:
                    raise
                swallowed += 1

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await cancel_and_wait([task], retry_s=0.05)
    assert task.cancelled() and swallowed == 1


async def test_what_a_task_ended_with_is_raised_and_finished_tasks_are_fine() -> None:
    async def fails_on_cancel() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise ValueError("cleanup failed") from None

    done = asyncio.create_task(asyncio.sleep(0))
    await done
    failing = asyncio.create_task(fails_on_cancel())
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="cleanup failed"):
        await cancel_and_wait([done, failing])
