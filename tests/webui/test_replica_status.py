"""The server's retained status reads online while any replica is: a replica that stops
leaves its farewell on the shared topic, and the one still serving says its birth again."""

from __future__ import annotations

from contextlib import AsyncExitStack

import aiomqtt
import orjson
import pytest

from broker.mosquitto_process import MosquittoProcess
from core.db.engine import Database
from core.protocol import topics
from core.settings import Settings
from tests.mqtt.broker import DEVICES, eventually
from tests.webui.replicas import start_replicas

pytestmark = pytest.mark.backends("one")


async def _retained(broker: MosquittoProcess) -> dict[str, str]:
    """The retained server status as a station reads it on connect."""
    async with aiomqtt.Client(
        "127.0.0.1", broker.port, username="press-07", password=DEVICES["press-07"]
    ) as station:
        await station.subscribe(topics.SERVER_STATUS, qos=1)
        async for message in station.messages:
            assert isinstance(message.payload, bytes)
            said: dict[str, str] = orjson.loads(message.payload)
            return said
    raise AssertionError


async def test_a_replica_that_stops_leaves_the_status_online_while_another_serves(
    settings: Settings, database: Database, replica_broker: MosquittoProcess
) -> None:
    async with AsyncExitStack() as stack:
        a, b = await start_replicas(stack, settings, database, replica_broker)
        assert (await _retained(replica_broker))["state"] == "online"
        await a.stop()  # its farewell: offline, clean
        await eventually(lambda: b.replica_status.reborn >= 1)
        said = await _retained(replica_broker)
        assert (said["node"], said["state"]) == ("replica-1", "online")
        assert a.replica_status.reborn == 0  # B's births never made A answer
