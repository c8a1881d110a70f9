"""The server's MQTT side in-process, connected to a test broker, for tests of stations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from core.db.engine import Database
from core.db.models import Device
from core.passwords import mosquitto_hash
from core.settings import Settings
from tests.mqtt.broker import SERVER, RunningBroker
from webui.backbone.server import Backbone


def server_settings(settings: Settings, broker: RunningBroker) -> Settings:
    """``settings`` pointed at ``broker`` as the server account."""
    return settings.model_copy(
        update={
            "mqtt_url": f"mqtt://127.0.0.1:{broker.port}",
            "mqtt_username": SERVER[0],
            "mqtt_password": SERVER[1],
            "mqtt_client_id": "pp-test-server",
        }
    )


async def register(
    database: Database, devices: Iterable[str], *, disabled: Iterable[str] = ()
) -> None:
    """Register devices in the server's database (their broker accounts are the broker's)."""
    async with database.session() as session:
        for device_id in devices:
            session.add(Device(id=device_id, mqtt_password_hash=mosquitto_hash("-")))
        for device_id in disabled:
            session.add(Device(id=device_id, mqtt_password_hash="-", enabled=False))


@asynccontextmanager
async def running_backbone(
    settings: Settings, database: Database, broker: RunningBroker
) -> AsyncIterator[Backbone]:
    """The backbone started and connected; stopped on exit."""
    backbone = Backbone(server_settings(settings, broker), database)
    await backbone.start()
    assert backbone.supervisor is not None
    async with asyncio.timeout(10):
        await backbone.supervisor.wait_connected()
    try:
        yield backbone
    finally:
        await backbone.stop()
