"""Stopping tasks for sure, even when a cancellation is swallowed once."""

from __future__ import annotations

import asyncio

import pytest

from core.tasks import Listeners, TaskSet, cancel_and_wait


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


def test_listeners_are_told_in_order_and_one_failing_does_not_silence_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    heard: list[str] = []
    listeners: Listeners[int] = Listeners("test")

    def broken(event: int) -> None:
        raise RuntimeError("boom")

    listeners.add(lambda e: heard.append(f"a{e}"))
    remove_broken = listeners.add(broken)
    remove_b = listeners.add(lambda e: heard.append(f"b{e}"))
    listeners.emit(1)
    assert heard == ["a1", "b1"]
    assert "test listener failed" in caplog.text
    remove_b()
    remove_b()  # removing twice is harmless
    remove_broken()
    listeners.emit(2)
    assert heard == ["a1", "b1", "a2"] and len(listeners) == 1


async def test_a_task_set_holds_tasks_until_done_and_cancels_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = TaskSet("test")
    finished = asyncio.Event()

    async def quick() -> int:
        return 1

    async def failing() -> None:
        raise RuntimeError("lost")

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            finished.set()

    done = tasks.spawn(quick())
    tasks.spawn(failing(), name="failing one")
    tasks.spawn(forever())
    assert len(tasks) == 3
    assert await done == 1
    for _ in range(3):
        await asyncio.sleep(0)
    assert len(tasks) == 1  # the two that ended were let go
    assert "test task failing one failed" in caplog.text
    async with asyncio.timeout(5):
        await tasks.cancel()
    assert finished.is_set() and len(tasks) == 0


async def test_a_task_set_joins_tasks_spawned_while_it_waits() -> None:
    tasks = TaskSet("test")
    ended: list[str] = []

    async def second() -> None:
        await asyncio.sleep(0.01)
        ended.append("second")

    async def first() -> None:
        await asyncio.sleep(0.01)
        tasks.spawn(second())
        ended.append("first")

    tasks.spawn(first())
    async with asyncio.timeout(5):
        await tasks.join()
    assert ended == ["first", "second"] and len(tasks) == 0
