"""The station agent: the composition of a station's parts, started and stopped as one.

Each concern is a part in a module of its own, built over the shared ``Station``:

- ``sampler``: samples the sources into the outbox and sends each sample live;
- ``replay``: replays what the server has not acknowledged, and takes its acks;
- ``heartbeat``: uptime, backlog and configuration version, every period;
- ``config_executor``: verifies, applies, keeps and reports the signed configuration;
- ``commands``: verifies the server's signed commands, runs each once (its ledger of ids,
  ``command_ledger``, is kept in the outbox file) with the handlers of
  ``command_handlers``, and answers on ``cmd/result``;
- ``link``: the supervisor (birth, will, farewell) and link events in the station's log;
- ``sync``: applies the server's signed pages to the station's replica of users, roles and
  configuration (``replica``, a file beside the outbox) and sends the edits made here up.

A part names the routes it answers and the loops it runs (see ``Part``); the agent
subscribes the routes before it connects, runs the loops while started and stops them all.

While it runs, the station holds the lock beside its outbox (``station_lock``): one process
per outbox.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from core.mqtt.routing import Route
from core.protocol.telemetry import Sample
from core.tasks import TaskSet
from desktop.agent.command_handlers import StationCommands
from desktop.agent.command_ledger import CommandLedger
from desktop.agent.commands import CommandExecutor
from desktop.agent.config import AgentConfig
from desktop.agent.config_executor import ConfigExecutor
from desktop.agent.heartbeat import Heartbeat
from desktop.agent.link import Link
from desktop.agent.outbox import Outbox
from desktop.agent.replay import Replay
from desktop.agent.replica import Replica, replica_path
from desktop.agent.sampler import Sampler
from desktop.agent.sources import Source
from desktop.agent.state import AgentEvent, AgentState, EventLog
from desktop.agent.station import Station
from desktop.agent.station_lock import StationLock, lock_file
from desktop.agent.sync import StationSync

__all__ = ["Agent", "AgentConfig", "AgentEvent", "AgentState", "Part"]


class Part(Protocol):
    """One concern of a running station: the routes it answers and the loops it runs."""

    def routes(self) -> Sequence[Route[Any]]:
        """Subscribed before the station connects, and again on every connect."""
        ...

    def loops(self) -> Sequence[Callable[[], Coroutine[Any, Any, None]]]:
        """Run from start until stop."""
        ...

    async def stop(self) -> None:
        """Cancel whatever the part started on its own (its loops are already stopped)."""
        ...


class Agent:
    """Runs one station until stopped."""

    def __init__(self, config: AgentConfig, sources: Sequence[Source]) -> None:
        self.config = config
        # The lock first: a second process must never open this outbox for writing.
        self.lock = StationLock.acquire(lock_file(config.outbox_path), station=config.device_id)
        try:
            self.outbox = Outbox(config.outbox_path, max_rows=config.max_rows, policy=config.policy)
        except BaseException:
            self.lock.release()
            raise
        try:
            self.ledger = CommandLedger(config.outbox_path)  # beside the outbox, in its file
        except BaseException:
            self.outbox.close()
            self.lock.release()
            raise
        try:  # users, roles and configuration, beside the outbox
            self.replica = Replica(
                replica_path(config.data_dir, config.device_id), device_id=config.device_id
            )
        except BaseException:
            self.ledger.close()
            self.outbox.close()
            self.lock.release()
            raise
        self.state = AgentState(config.device_id, stream=self.outbox.stream)
        self.state.count(self.outbox)
        self.events = EventLog(self.state)
        self.link = Link(config, stream=self.outbox.stream, state=self.state, events=self.events)
        self.supervisor = self.link.supervisor
        self.station = station = Station(
            config, self.state, self.outbox, asyncio.Lock(), self.supervisor, self.events
        )
        self.replay = Replay(station)
        self.sampler = Sampler(station, sources, self.replay)
        self.heartbeat = Heartbeat(station)
        self.configuration = ConfigExecutor(
            station, retime=self.sampler.retime, beat=self.heartbeat.beat
        )
        handlers = StationCommands(
            station,
            configuration=self.configuration,
            replay=self.replay,
            uptime_s=self.heartbeat.uptime_s,
        )
        self.commands = CommandExecutor(station, self.ledger, handlers.table())
        self.sync = StationSync(station, self.replica)
        self.parts: tuple[Part, ...] = (
            self.sampler,
            self.replay,
            self.heartbeat,
            self.configuration,
            self.commands,
            self.sync,
        )
        # The replay first: the link's "connected" line says how much the replay has to send.
        self.supervisor.add_listener(self.replay.on_link)
        self.supervisor.add_listener(self.link.on_link)
        self.supervisor.add_listener(self.commands.on_link)
        self.supervisor.add_listener(self.sync.on_link)
        self._loops = TaskSet(f"station {config.device_id}")

    def add_listener(self, listener: Callable[[AgentEvent], None]) -> Callable[[], None]:
        """Call ``listener`` with every event; returns the function that removes it."""
        return self.events.listeners.add(listener)

    async def start(self) -> None:
        """Subscribe every part's routes, connect, and start every part's loops."""
        for part in self.parts:
            for route in part.routes():
                await self.supervisor.route(route)
        await self.supervisor.start()
        for part in self.parts:
            for loop in part.loops():
                self._loops.spawn(loop(), name=loop.__name__)

    async def sample_once(self) -> Sample | None:
        """Sample the sources once now, as the sampling loop does."""
        return await self.sampler.sample_once()

    async def stop(self) -> None:
        """Stop every part, publish the clean farewell, close the outbox, release the lock."""
        try:
            await self._loops.cancel()
            for part in self.parts:
                await part.stop()
            await self.supervisor.stop()
        finally:
            async with self.station.io:
                await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Close the replica, the ledger and the outbox and release the lock, at once (for an
        agent never started)."""
        try:
            self.replica.close()
            self.ledger.close()
            self.outbox.close()
        finally:
            self.lock.release()
