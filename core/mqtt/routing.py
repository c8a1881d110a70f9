"""The routing table: which handler gets which topic, after which decoder."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from core.protocol import topics
from core.protocol.drops import Drop, DropReason
from core.tasks import Listeners

log = logging.getLogger(__name__)
T = TypeVar("T")


def strip_share(topic_filter: str) -> str:
    """The plain filter of a ``$share/<group>/<filter>`` subscription (others unchanged)."""
    if topic_filter.startswith("$share/"):
        return topic_filter.split("/", 2)[2]
    return topic_filter


def matches(topic_filter: str, topic: str) -> bool:
    """Whether a received ``topic`` matches ``topic_filter`` (with ``+`` and ``#``)."""
    wanted = strip_share(topic_filter).split("/")
    got = topic.split("/")
    for index, level in enumerate(wanted):
        if level == "#":
            return True
        if index >= len(got) or (level != "+" and level != got[index]):
            return False
    return len(got) == len(wanted)


@dataclass(frozen=True)
class Route(Generic[T]):
    """One subscription: its filter and QoS, the decoder of its payloads and their handler."""

    topic_filter: str
    qos: int
    # The decoder turns a payload into a validated envelope or a Drop, and never raises.
    decode: Callable[[topics.ParsedTopic, bytes], T | Drop]
    handle: Callable[[T], Awaitable[None]]

    def __post_init__(self) -> None:
        if self.qos not in (0, 1, 2):
            msg = f"QoS must be 0, 1 or 2: {self.qos}"
            raise ValueError(msg)
        if not self.topic_filter:
            msg = "a route needs a topic filter"
            raise ValueError(msg)


@dataclass(frozen=True)
class Delivery:
    """A message that decoded: its topic, its envelope, and whether it is a retained copy.

    A retained copy is the broker replaying a stored message to a new subscription (on every
    connect), not news from its sender.
    """

    topic: topics.ParsedTopic
    envelope: Any
    retained: bool = False


@dataclass
class Router:
    """Routes received messages to handlers; counts every message and every drop by reason."""

    routes: list[Route[Any]] = field(default_factory=list)
    received: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    # Told of every message that decoded, before its handler runs.
    delivered: Listeners[Delivery] = field(default_factory=lambda: Listeners("router"))

    def add(self, route: Route[Any]) -> None:
        """Add a route; the supervisor subscribes to it on every connect."""
        self.routes.append(route)

    def drop(self, reason: DropReason, detail: str, topic: str) -> None:
        """Count and log a dropped message."""
        self.dropped[reason.value] += 1
        log.warning("dropped a message on %s (%s): %s", topic, reason.value, detail)

    async def dispatch(self, topic: str, payload: bytes, *, retained: bool = False) -> None:
        """Decode and hand one message to every matching route; never raises.

        ``retained``: the broker sent a retained copy because we subscribed.
        """
        self.received += 1
        parsed = topics.parse(topic)
        if parsed is None:
            self.drop(DropReason.UNKNOWN_TOPIC, "not a protocol v1 topic", topic)
            return
        for route in self.routes:
            if not matches(route.topic_filter, topic):
                continue
            try:
                envelope = route.decode(parsed, payload)
            except Exception as error:  # a decoder's bug: one message lost, not the link
                log.exception("decoder of %s failed", route.topic_filter)
                self.drop(DropReason.HANDLER_FAILED, f"decoder failed: {error!r}", topic)
                continue
            if isinstance(envelope, Drop):
                self.drop(envelope.reason, envelope.detail, topic)
                continue
            self.delivered.emit(Delivery(parsed, envelope, retained))
            try:
                await route.handle(envelope)
            except Exception as error:  # a handler's bug must not stop the receive loop
                log.exception("handler of %s failed", route.topic_filter)
                self.drop(DropReason.HANDLER_FAILED, repr(error), topic)
