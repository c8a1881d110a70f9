"""The desired configuration: verify the server's signature, apply, keep, and report back.

The server's signed ``config/desired`` is verified, applied at once, kept in the outbox file
(a restart offline keeps it) and answered on ``config/reported``; the station's own flags
only fill in what no configuration has said yet.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from core.mqtt.routing import Route
from core.protocol import topics
from core.protocol.drops import Drop, DropReason
from core.protocol.station_config import (
    ConfigReport,
    DesiredConfig,
    Outcome,
    Refused,
    read_desired,
)
from desktop.agent.station import Station

log = logging.getLogger(__name__)


class ConfigExecutor:
    """Applies the configuration the server signs for the station, and says so."""

    def __init__(
        self,
        station: Station,
        *,
        retime: Callable[[], None],
        beat: Callable[[], Awaitable[None]],
    ) -> None:
        self._station = station
        self._retime = retime  # the sampler takes a new interval at once
        self._beat = beat  # the server sees a new version without waiting a heartbeat period
        self._reported = -1  # the applied version the server was last told of
        self._use(*station.outbox.applied_config())

    def routes(self) -> Sequence[Route[Any]]:
        """The desired configuration (retained: it comes again on every connect)."""
        d = self._station.config.device_id
        return [Route(topics.config_desired(d), 1, self._decode, self.on_desired)]

    def loops(self) -> Sequence[Callable[[], Coroutine[Any, Any, None]]]:
        """None: the configuration only answers messages."""
        return []

    async def stop(self) -> None:
        """Nothing runs on its own."""

    def _use(self, version: int, settings: dict[str, Any]) -> None:
        config, state = self._station.config, self._station.state
        state.config_version, state.settings = version, settings
        state.interval_s = float(settings.get("interval_s", config.interval_s))
        state.heartbeat_s = int(settings.get("heartbeat_s", config.heartbeat_s))

    def _decode(self, topic: topics.ParsedTopic, payload: bytes) -> DesiredConfig | Refused | Drop:
        if not payload:  # the server cleared the retained message: nothing is asked
            return Drop(DropReason.MALFORMED, "empty desired configuration")
        config = self._station.config
        now_ms = int(time.time() * 1000)
        return read_desired(payload, config.device_id, config.server_keys, now_ms=now_ms)

    async def on_desired(self, desired: DesiredConfig | Refused) -> None:
        """Apply a verified desired configuration, or refuse it; report either way."""
        station = self._station
        applied = station.state.config_version
        if isinstance(desired, Refused):
            station.events.record("config", f"desired configuration refused: {desired.detail}")
            await self._report("rejected", desired.version or 0, desired.detail)
            return
        if desired.version < applied:  # say so: a restored server must not think it applies
            detail = f"version {desired.version} is older than the applied {applied}"
            station.events.record("config", f"desired configuration refused: {detail}")
            await self._report("rejected", desired.version, detail)
            return
        if desired.version == applied:  # the retained copy, again on every connect
            if self._reported != applied:
                await self._report("applied", applied)
            return
        async with station.io:
            await asyncio.to_thread(station.outbox.save_config, desired.version, desired.settings)
        self._use(desired.version, desired.settings)
        self._retime()
        station.events.record(
            "config",
            f"configuration v{desired.version} applied: a sample every "
            f"{station.state.interval_s:g} s, a heartbeat every {station.state.heartbeat_s} s",
        )
        await self._report("applied", desired.version)
        await self._beat()

    async def _report(self, outcome: Outcome, desired_version: int, detail: str = "") -> None:
        station = self._station
        state = station.state
        report = ConfigReport(
            station.config.device_id,
            state.config_version,
            state.settings,
            outcome,
            desired_version,
            detail,
        )
        topic = topics.config_reported(station.config.device_id)
        try:
            await station.link.publish(topic, report.encode(), qos=1, retain=True)
        except Exception as error:  # the retained desired comes again on the next connect
            log.info("config report not sent: %s", error)
            return
        if outcome == "applied":
            self._reported = state.config_version
