"""Device configuration over MQTT: desired out (signed, retained), reported back in.

Every change an admin makes is published once it has committed; on every connect the
server publishes all of them again, freshly signed, so a broker that lost its retained
messages (no persistence, a new node) still hands each station its configuration. What a
station reports is stored beside what was asked of it, and audited when it changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from core.db.engine import Database
from core.mqtt.routing import Route
from core.protocol import topics
from core.protocol.drops import Drop
from core.protocol.signing import SigningKey
from core.protocol.station_config import ConfigReport, DesiredConfig
from core.services import device_configs

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], Awaitable[None]]


class DeviceConfigs:
    """Publishes desired configurations and records what stations report."""

    def __init__(self, database: Database, key: SigningKey, publish: Publish) -> None:
        self._database = database
        self._key = key
        self._publish = publish
        self._heard: dict[str, ConfigReport] = {}  # retained reports come again on each connect

    def routes(self) -> list[Route[ConfigReport]]:
        """Every station's reports (QoS 1, retained: the server hears them on each connect)."""
        return [Route(topics.ALL_CONFIG_REPORTED, 1, self._decode, self._on_report)]

    def _decode(self, topic: topics.ParsedTopic, payload: bytes) -> ConfigReport | Drop:
        assert topic.device_id is not None  # the route matches device topics only
        return ConfigReport.parse(payload, topic.device_id)

    async def publish(self, device_id: str) -> None:
        """Publish the device's desired configuration, signed (nothing before a first change)."""
        async with self._database.session() as session:
            desired = await device_configs.desired(session, device_id=device_id)
        if desired is not None:
            await self._send(desired)

    async def publish_all(self) -> None:
        """Publish every device's desired configuration (after each connect)."""
        async with self._database.session() as session:
            wanted = await device_configs.all_desired(session)
        for desired in wanted:
            await self._send(desired)
        log.info("published %d desired configurations", len(wanted))

    async def _send(self, desired: DesiredConfig) -> None:
        payload = desired.signed(self._key, now_ms=int(time.time() * 1000))
        await self._publish(topics.config_desired(desired.device_id), payload)

    async def _on_report(self, report: ConfigReport) -> None:
        news = self._heard.get(report.device_id) != report
        self._heard[report.device_id] = report
        async with self._database.session() as session:
            known = await device_configs.record_report(session, report=report, news=news)
        if not known:
            log.warning("config report from unknown device %s ignored", report.device_id)
