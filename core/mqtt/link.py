"""The link's vocabulary: its states and their events, and what a supervisor is given (its
options, presence messages and backoff). Value types only, so a window or a page can speak
of the link without importing the MQTT client."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from core.mqtt.takeover import Takeover


class LinkState(StrEnum):
    """Where the connection to the broker stands."""

    STARTING = "starting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    # Another client holds this identity and keeps taking the session over: waiting longer.
    CONFLICT = "conflict"
    AUTH_FAILED = "auth_failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class LinkEvent:
    """A change of link state, with when it happened and why."""

    state: LinkState
    since: datetime
    detail: str = ""


@dataclass(frozen=True)
class Outgoing:
    """A message to publish (birth, will and farewell are given this way)."""

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with jitter, so a fleet does not reconnect in lockstep."""

    initial: float = 0.2  # seconds; a restarted broker is usually back within a second
    cap: float = 10.0  # seconds; the longest a station waits to notice the broker is back

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait before reconnect ``attempt`` (0-based): between half and all of the bound."""
        bound = min(self.cap, self.initial * 2 ** min(attempt, 32))
        return rng.uniform(bound / 2, bound)


class NotConnectedError(RuntimeError):
    """Raised by ``publish`` while the link is down."""


@dataclass
class Options:
    """How a supervisor connects: identity, session, presence messages and limits."""

    client_id: str
    birth: Outgoing | None = None
    will: Outgoing | None = None
    farewell: Outgoing | None = None  # published by stop(): a clean disconnect fires no will
    clean_session: bool = False  # a persistent session keeps QoS 1 messages while we are away
    keepalive: int = 30  # seconds; the broker declares us lost after 1.5x this
    # QoS 1/2 messages we keep in flight: at or below the broker's max_inflight_messages.
    inflight_window: int = 100
    publish_timeout: float = 10.0  # seconds to wait for a PUBACK before calling the link bad
    backoff: Backoff = field(default_factory=Backoff)
    takeover: Takeover = field(default_factory=Takeover)
