"""Helpers for tests that send commands to a real station agent."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from desktop.agent.agent import Agent
from desktop.agent.commands import Outcome


@contextlib.asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[Agent]:
    """``agent`` started and connected (within 10 s), stopped on the way out."""
    await agent.start()
    try:
        async with asyncio.timeout(10):
            await agent.supervisor.wait_connected()
        yield agent
    finally:
        await agent.stop()


def counting(agent: Agent, kind: str) -> list[dict[str, Any]]:
    """The arguments of each run of ``kind``'s handler, which still runs as it would."""
    runs: list[dict[str, Any]] = []
    handler = agent.commands.handlers[kind]

    async def counted(args: dict[str, Any], deadline: float) -> Outcome:
        runs.append(args)
        return await handler(args, deadline)

    agent.commands.handlers[kind] = counted
    return runs
