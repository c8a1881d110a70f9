"""What a station shows (the window, the log): its state, updated in place, and its events."""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from core.mqtt.link import LinkEvent
from core.protocol.telemetry import Value
from core.tasks import Listeners
from desktop.agent.outbox import Outbox

log = logging.getLogger(__name__)
EVENT_LOG = 200  # events kept for the window


@dataclass(frozen=True)
class AgentEvent:
    """Something the station's log shows: connects, drops, replays, cap events."""

    at: float  # time.time()
    kind: str
    text: str


@dataclass
class AgentState:
    """What the window shows; updated in place by the station's parts."""

    device_id: str
    stream: str = ""
    link: LinkEvent | None = None
    values: dict[str, Value] = field(default_factory=dict)
    last_seq: int = 0
    last_ts: int = 0
    acked_seq: int = 0
    depth: int = 0
    replay_total: int = 0  # backlog size when the current replay began
    replay_sent: int = 0
    refused: int = 0  # samples the refuse policy turned away
    dropped: int = 0  # samples the drop-oldest policy removed before the server had them
    config_version: int = 0  # the configuration applied; 0 while none has been
    settings: dict[str, Any] = field(default_factory=dict)  # as the configuration gave them
    interval_s: float = 1.0  # in effect: the configuration's, else the station's flag
    heartbeat_s: int = 5
    events: deque[AgentEvent] = field(default_factory=lambda: deque(maxlen=EVENT_LOG))

    def count(self, outbox: Outbox) -> None:
        """Take the outbox's depth and ack watermark, after it changed."""
        self.depth = outbox.depth
        self.acked_seq = outbox.acked_seq


class EventLog:
    """Records a station's events in its state and the log, and tells the listeners."""

    def __init__(self, state: AgentState) -> None:
        self._state = state
        self.listeners: Listeners[AgentEvent] = Listeners(f"station {state.device_id}")

    def record(self, kind: str, text: str) -> None:
        """Keep, log and announce one event."""
        event = AgentEvent(time.time(), kind, text)
        self._state.events.append(event)
        log.info("%s: %s", self._state.device_id, text)
        self.listeners.emit(event)
