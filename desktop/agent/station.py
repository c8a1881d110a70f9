"""What every part of a running station works with, handed to each part when it is built."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from core.mqtt.supervisor import Supervisor
from desktop.agent.config import AgentConfig
from desktop.agent.outbox import Outbox
from desktop.agent.state import AgentState, EventLog


@dataclass(frozen=True)
class Station:
    """One station as its parts see it: its flags, state, outbox, link and event log."""

    config: AgentConfig
    state: AgentState
    outbox: Outbox
    # The outbox's writing connection, one call at a time (see outbox.py's threading rules).
    io: asyncio.Lock
    link: Supervisor
    events: EventLog
