"""The heartbeat: uptime, backlog and the applied configuration version, every period."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from core.mqtt.link import NotConnectedError
from core.mqtt.routing import Route
from core.protocol import topics
from core.protocol.messages import Heartbeat as Beat
from desktop.agent.station import Station

LOOK_S = 1.0  # how often the loop looks at the clock, so a shorter period applies at once


class Heartbeat:
    """Publishes the station's heartbeat every ``heartbeat_s`` in effect, and on demand."""

    def __init__(self, station: Station) -> None:
        self._station = station
        self._started = time.monotonic()

    def routes(self) -> Sequence[Route[Any]]:
        """None: the heartbeat listens to nothing."""
        return []

    def loops(self) -> Sequence[Callable[[], Coroutine[Any, Any, None]]]:
        """The heartbeat loop."""
        return [self._beat_forever]

    async def stop(self) -> None:
        """Nothing to stop beyond the loop."""

    def uptime_s(self) -> int:
        """Whole seconds since the station started."""
        return int(time.monotonic() - self._started)

    async def beat(self) -> None:
        """Publish one heartbeat now, if connected."""
        station = self._station
        beat = Beat(
            station.config.device_id,
            interval_s=station.state.heartbeat_s,
            uptime_s=self.uptime_s(),
            outbox=station.outbox.depth,
            config_version=station.state.config_version,
        )
        with contextlib.suppress(NotConnectedError):
            await station.link.publish(topics.heartbeat(station.config.device_id), beat.encode())

    async def _beat_forever(self) -> None:
        state = self._station.state
        last = time.monotonic()
        while True:
            await asyncio.sleep(min(LOOK_S, state.heartbeat_s))
            if time.monotonic() - last >= state.heartbeat_s:
                last = time.monotonic()
                await self.beat()
