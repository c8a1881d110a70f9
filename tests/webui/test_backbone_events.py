"""The backbone hears of committed changes by itself: no caller tells it.

A device registered, disabled or reconfigured through the service reaches the running
backbone (its device directory, its signed configuration on the broker); a change that is
rolled back reaches nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiomqtt
import pytest

from core.db.engine import Database
from core.protocol import topics
from core.protocol.station_config import DesiredConfig, read_desired
from core.services import device_configs, devices
from core.services.actor import Actor
from core.settings import Settings
from tests.mqtt.broker import DEVICES, RunningBroker, eventually
from tests.mqtt.server import running_backbone
from webui.backbone.directory import Standing
from webui.backbone.server import Backbone

ADMIN = Actor(
    name="admin", permissions=frozenset({"devices:read", "devices:write", "config:write"})
)
DEVICE = "press-07"


class Boom(Exception):
    """What the test raises to roll a transaction back."""


@pytest.fixture
async def backbone(
    settings: Settings, database: Database, mosquitto: RunningBroker
) -> AsyncIterator[Backbone]:
    """The server's MQTT side, started and connected."""
    async with running_backbone(settings, database, mosquitto) as backbone:
        yield backbone


async def _configure(database: Database, **changes: object) -> None:
    async with database.session() as session:
        await device_configs.update_desired(session, actor=ADMIN, device_id=DEVICE, changes=changes)


async def test_device_changes_reach_the_directory(backbone: Backbone, database: Database) -> None:
    directory = backbone.directory
    assert await directory.standing(DEVICE) is Standing.UNKNOWN  # and cached for seconds
    async with database.session() as session:
        await devices.create_device(session, actor=ADMIN, device_id=DEVICE)
    assert await directory.standing(DEVICE) is Standing.ENABLED
    async with database.session() as session:
        await devices.update_device(session, actor=ADMIN, device_id=DEVICE, enabled=False)
    assert await directory.standing(DEVICE) is Standing.DISABLED

    queries = directory.queries
    with pytest.raises(Boom):
        async with database.session() as session:
            await devices.update_device(session, actor=ADMIN, device_id=DEVICE, enabled=True)
            raise Boom
    assert await directory.standing(DEVICE) is Standing.DISABLED
    assert directory.queries == queries  # its cached answer stood: it was told nothing


async def test_configuration_changes_reach_the_station_and_rolled_back_ones_do_not(
    backbone: Backbone, database: Database, mosquitto: RunningBroker
) -> None:
    async with database.session() as session:
        await devices.create_device(session, actor=ADMIN, device_id=DEVICE)
    keys = [backbone.signing_key.public_key()]
    received: list[DesiredConfig] = []
    async with aiomqtt.Client(
        "127.0.0.1", mosquitto.port, username=DEVICE, password=DEVICES[DEVICE]
    ) as station:
        await station.subscribe(topics.config_desired(DEVICE), qos=1)

        async def read() -> None:
            async for message in station.messages:
                assert isinstance(message.payload, bytes)
                desired = read_desired(
                    message.payload, DEVICE, keys, now_ms=int(time.time() * 1000)
                )
                assert isinstance(desired, DesiredConfig), desired
                received.append(desired)

        reader = asyncio.get_running_loop().create_task(read())
        try:
            await _configure(database, interval_s=2)
            await eventually(lambda: len(received) == 1)
            with pytest.raises(Boom):
                async with database.session() as session:
                    await device_configs.update_desired(
                        session, actor=ADMIN, device_id=DEVICE, changes={"interval_s": 5}
                    )
                    raise Boom
            await _configure(database, heartbeat_s=10)
            await eventually(lambda: len(received) == 2)
        finally:
            reader.cancel()
    # Published in order on one topic: had the rolled-back change gone out, it would be here.
    assert [(d.version, d.settings) for d in received] == [
        (1, {"interval_s": 2}),
        (2, {"interval_s": 2, "heartbeat_s": 10}),
    ]
