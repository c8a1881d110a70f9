"""The server's retained status reads online while any replica is: a replica that stops
leaves its farewell on the shared topic, and the one still serving says its birth again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import aiomqtt
import orjson
import pytest

from broker import config
from broker.credentials import PasswordFile
from broker.mosquitto_process import MosquittoProcess, configure_mosquitto
from core.db.engine import Database
from core.passwords import mosquitto_hash
from core.protocol import topics
from core.settings import Settings
from tests.mqtt.broker import DEVICES, SERVER, eventually
from webui.backbone.server import Backbone

pytestmark = pytest.mark.backends("one")
REPLICA_B = ("server-b", "server-b-secret-1")


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[MosquittoProcess]:
    """Mosquitto with our ACL and two server accounts, one per replica."""
    usernames = (SERVER[0], REPLICA_B[0])
    broker = configure_mosquitto(tmp_path / "broker", server_usernames=usernames)
    accounts = PasswordFile(broker.config_file.parent / config.PASSWORD_FILE_NAME)
    for username, password in {SERVER[0]: SERVER[1], REPLICA_B[0]: REPLICA_B[1], **DEVICES}.items():
        accounts.set(username, mosquitto_hash(password))
    await broker.start()
    yield broker
    await broker.stop()


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
    settings: Settings, database: Database, broker: MosquittoProcess
) -> None:
    replicas = []
    async with AsyncExitStack() as stack:
        for n, (username, password) in enumerate([SERVER, REPLICA_B]):
            own = settings.model_copy(
                update={
                    "mqtt_url": f"mqtt://127.0.0.1:{broker.port}",
                    "mqtt_username": username,
                    "mqtt_password": password,
                    "node_id": f"replica-{n}",
                    "signing_key_file": settings.signing_key_file.with_name(f"key-{n}.pem"),
                }
            )
            backbone = Backbone(own, database)
            await backbone.start()
            stack.push_async_callback(backbone.stop)
            assert backbone.supervisor is not None
            await backbone.supervisor.wait_connected()
            replicas.append(backbone)
        a, b = replicas
        assert (await _retained(broker))["state"] == "online"
        await a.stop()  # its farewell: offline, clean
        await eventually(lambda: b.replica_status.reborn >= 1)
        said = await _retained(broker)
        assert (said["node"], said["state"]) == ("replica-1", "online")
        assert a.replica_status.reborn == 0  # B's births never made A answer
