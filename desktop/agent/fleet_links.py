"""A fleet's links in words a person reads: connected, refused by the broker, or no broker.

``simulate`` prints a line each time the picture changes, and never says the stations run
before they are connected. A station the broker refuses (not authorized) is started again
every REFUSED_RETRY_S for REFUSED_GRACE_S, since a device registered a moment ago may not be
in the broker's password file yet; past that it is left stopped, named. A station that finds
no broker keeps trying, as every station does, and the line says so.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.mqtt.endpoint import Endpoint
from core.mqtt.link import LinkState
from desktop.agent.agent import Agent

# The demo writes its broker's accounts from the database every second, and a server does
# at once on its own changes: a fresh registration is let in well within this.
REFUSED_GRACE_S = 15.0
REFUSED_RETRY_S = 2.0  # a refused connect costs the broker a hash check: not in a tight loop
NAMES_SHOWN = 5  # a load test of 1,000 refused stations needs no 1,000 names in one line


@dataclass(frozen=True)
class Links:
    """Where each station's link stands, in groups a sentence can name."""

    total: int
    connected: int = 0
    connecting: int = 0  # no answer yet
    refused: tuple[str, ...] = ()  # not authorized, still being retried
    given_up: tuple[str, ...] = ()  # not authorized for REFUSED_GRACE_S: left stopped
    unreachable: dict[str, str] = field(default_factory=dict)  # station → why
    in_use: tuple[str, ...] = ()  # another client logged in with the same credentials

    def sentence(self, where: str) -> str:
        """One line: how many are connected to ``where``, and what keeps the others out."""
        if self.connected == self.total:
            return f"all {self.total} stations connected to {where}"
        parts = [f"{self.connected} of {self.total} stations connected to {where}"]
        if self.connecting:
            parts.append(f"{self.connecting} connecting")
        if self.refused:
            parts.append(
                f"{len(self.refused)} refused by the broker, not authorized"
                f" ({_names(self.refused)}): retrying for {REFUSED_GRACE_S:.0f} s, as a"
                " device registered a moment ago may not have reached the broker yet"
            )
        if self.given_up:
            parts.append(
                f"{len(self.given_up)} left stopped, not authorized ({_names(self.given_up)}):"
                " are they registered and enabled, with the passwords in the credentials file?"
            )
        if self.unreachable:
            why = next(iter(self.unreachable.values()))
            parts.append(f"{len(self.unreachable)} find no broker at {where} ({why}): still trying")
        if self.in_use:
            parts.append(
                f"{len(self.in_use)} are logged in elsewhere with the same credentials"
                f" ({_names(self.in_use)}): yielding to them"
            )
        return "; ".join(parts)


def _names(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:NAMES_SHOWN])
    return shown if len(ids) <= NAMES_SHOWN else f"{shown} and {len(ids) - NAMES_SHOWN} more"


_OS_ERROR_NUMBER = re.compile(r"^\[Errno \d+\] ")  # "[Errno 111] Connection refused"


def where(endpoint: Endpoint) -> str:
    """``host:port``, as a person looks for a broker."""
    return f"{endpoint.host}:{endpoint.port}"


class FleetLinks:
    """Watches a started fleet's links, retries refused stations, and says what it sees."""

    def __init__(
        self,
        agents: Sequence[Agent],
        say: Callable[[str], None],
        *,
        grace_s: float = REFUSED_GRACE_S,
        retry_s: float = REFUSED_RETRY_S,
    ) -> None:
        self._agents = list(agents)
        self._say = say
        self._grace_s, self._retry_s = grace_s, retry_s
        self._refused: set[str] = set()  # refused since last connected (retries included)
        self._given_up: set[str] = set()
        self._last = ""

    def links(self) -> Links:
        """The links as they stand now."""
        refused, given_up, in_use, unreachable, connected, connecting = [], [], [], {}, 0, 0
        for agent in self._agents:
            name, event = agent.config.device_id, agent.supervisor.event
            if event.state is LinkState.CONNECTED:
                self._refused.discard(name)
                connected += 1
            elif name in self._given_up:
                given_up.append(name)
            elif event.state is LinkState.AUTH_FAILED or name in self._refused:
                self._refused.add(name)  # and while it tries again
                refused.append(name)
            elif event.state is LinkState.CONFLICT:
                in_use.append(name)
            elif event.state is LinkState.RECONNECTING:
                unreachable[name] = _OS_ERROR_NUMBER.sub("", event.detail)
            elif event.state is LinkState.STARTING:
                connecting += 1
        return Links(
            len(self._agents),
            connected,
            connecting,
            tuple(refused),
            tuple(given_up),
            unreachable,
            tuple(in_use),
        )

    async def watch(self, endpoint: Endpoint, stop: asyncio.Event) -> bool:
        """Say each change until ``stop``; False once every station is refused for good."""
        changed = asyncio.Event()
        unlisten = [a.supervisor.add_listener(lambda _: changed.set()) for a in self._agents]
        started = time.monotonic()
        try:
            while not stop.is_set():
                changed.clear()
                await self._retry_refused(past_grace=time.monotonic() - started > self._grace_s)
                links = self.links()
                line = links.sentence(where(endpoint))
                if line != self._last:
                    self._say(line)
                    self._last = line
                if len(links.given_up) == links.total:
                    return False
                waits = [asyncio.ensure_future(e.wait()) for e in (changed, stop)]
                _, pending = await asyncio.wait(
                    waits, timeout=self._retry_s, return_when=asyncio.FIRST_COMPLETED
                )
                for waiting in pending:
                    waiting.cancel()
        finally:
            for remove in unlisten:
                remove()
        return True

    async def _retry_refused(self, *, past_grace: bool) -> None:
        for agent in self._agents:
            name, event = agent.config.device_id, agent.supervisor.event
            if event.state is not LinkState.AUTH_FAILED or name in self._given_up:
                continue
            if past_grace:
                self._given_up.add(name)
            elif (datetime.now(UTC) - event.since).total_seconds() >= self._retry_s:
                await agent.supervisor.start()  # it gave up: a new connect from the start
