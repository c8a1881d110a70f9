"""The desired configuration: verify the server's signature, apply, keep, and report back.

The server's signed ``config/desired`` is verified, applied at once, kept in the outbox file
(a restart offline keeps it) and answered on ``config/reported``; the station's own flags
only fill in what no configuration has said yet.

A command may wait for a given version (``UpdateConfig``): ``wait_for`` says how it ended
here — applied, refused with the station's reason, or superseded by a newer one.
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
# Refused versions remembered for a command that asks after them: a command waits for the
# version the server has just made, so only the last few can be asked about.
REMEMBERED = 32


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
        self._newest = station.state.config_version  # the newest verified version seen
        self._refused: dict[int, str] = {}  # verified version -> the station's reason
        self._unverified = ""  # why the last unverifiable one was refused, since the last good
        self._news = asyncio.Event()  # set (and replaced) whenever a desired config was handled

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
        try:
            await self._handle(desired)
        finally:
            self._news.set()
            self._news = asyncio.Event()

    async def _handle(self, desired: DesiredConfig | Refused) -> None:
        station = self._station
        applied = station.state.config_version
        if isinstance(desired, Refused):
            station.events.record("config", f"desired configuration refused: {desired.detail}")
            self._refuse(desired.version, desired.detail)
            await self._report("rejected", desired.version or 0, desired.detail)
            return
        if desired.version < applied:  # say so: a restored server must not think it applies
            detail = f"version {desired.version} is older than the applied {applied}"
            station.events.record("config", f"desired configuration refused: {detail}")
            self._refuse(desired.version, detail)
            await self._report("rejected", desired.version, detail)
            return
        self._newest, self._unverified = max(self._newest, desired.version), ""
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

    def _refuse(self, version: int | None, detail: str) -> None:
        """Remember why a version was refused, for a command waiting for it."""
        if version is None:  # unverified: its claimed version cannot be trusted
            self._unverified = detail
            return
        self._newest = max(self._newest, version)
        self._refused[version] = detail
        while len(self._refused) > REMEMBERED:
            del self._refused[min(self._refused)]

    async def wait_for(self, version: int, *, deadline: float) -> tuple[Outcome, str]:
        """How desired ``version`` ends on this station: applied, or rejected and why.

        Waits for it until ``deadline`` (the event loop's clock). Already running it counts
        as applied; a newer version applied or seen first supersedes it.
        """
        while True:
            news = self._news
            verdict = self._verdict(version)
            if verdict is not None:
                return verdict
            try:
                async with asyncio.timeout_at(deadline):
                    await news.wait()
            except TimeoutError:
                detail = f"v{version} did not arrive before the command expired"
                if self._unverified:
                    detail += f"; the station refused a configuration: {self._unverified}"
                return "rejected", detail

    def _verdict(self, version: int) -> tuple[Outcome, str] | None:
        applied = self._station.state.config_version
        if applied == version:
            return "applied", ""
        if version in self._refused:
            return "rejected", self._refused[version]
        newest = max(applied, self._newest)
        if newest > version:
            return "rejected", f"superseded by v{newest}"
        return None

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
