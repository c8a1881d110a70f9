"""The server's retained status among replicas: one topic, and the last writer wins.

Every replica says its birth (online) on connect, and leaves its will or farewell (offline)
on the same retained topic (``server/status``), each naming its node. So a replica that
stops or is lost leaves "offline" there while another still serves, and stations take the
server for away: they hold their prompt replay and their pulls for its return. Each replica
therefore follows the topic, and when another node says it is not online while this one's
link is up, says its own birth again: the retained status reads online while any replica is.

Its own statuses, and other replicas' births, change nothing; so two replicas never answer
each other in a loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import NamedTuple

import orjson

from core.mqtt.routing import Route
from core.protocol import topics
from core.protocol.drops import Drop, DropReason


class Said(NamedTuple):
    """A server status as a replica reads it: whose, and what it says."""

    node: str
    state: str


def _decode(_topic: topics.ParsedTopic, payload: bytes) -> Said | Drop:
    if not payload:  # cleared: nobody's word
        return Said("", "")
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return Drop(DropReason.MALFORMED, "server status is not JSON")
    if not isinstance(message, dict):
        return Drop(DropReason.MALFORMED, "server status is not an object")
    return Said(str(message.get("node", "")), str(message.get("state", "")))


class ReplicaStatus:
    """Says this replica's birth again when another replica's status says it left."""

    def __init__(
        self, node: str, *, birth: Callable[[], Awaitable[None]], link_up: Callable[[], bool]
    ) -> None:
        self._node = node
        self._birth = birth
        self._link_up = link_up
        self.reborn = 0  # births said again (tests and logs count them)

    def routes(self) -> list[Route[Said]]:
        """The server status topic (QoS 1, retained)."""
        return [Route(topics.SERVER_STATUS, 1, _decode, self.on_status)]

    async def on_status(self, said: Said) -> None:
        """A status on the topic: if another node's says it is not online, ours again."""
        if said.node == self._node or said.state == "online" or not self._link_up():
            return
        await self._birth()
        self.reborn += 1
