"""Two server replicas on one database and one Mosquitto, each with its own broker account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from broker import config
from broker.credentials import PasswordFile
from broker.mosquitto_process import MosquittoProcess, configure_mosquitto
from core.db.engine import Database
from core.passwords import mosquitto_hash
from core.settings import Settings
from tests.mqtt.broker import DEVICES, SERVER
from webui.backbone.server import Backbone

# Each replica its own broker account: our brokers bind a client id to its username.
REPLICA_B = ("server-b", "server-b-secret-1")


@asynccontextmanager
async def replica_broker(folder: Path) -> AsyncIterator[MosquittoProcess]:
    """Mosquitto with our ACL and two server accounts, one per replica, and the stations'."""
    usernames = (SERVER[0], REPLICA_B[0])
    broker = configure_mosquitto(folder / "broker", server_usernames=usernames)
    accounts = PasswordFile(broker.config_file.parent / config.PASSWORD_FILE_NAME)
    for username, password in {SERVER[0]: SERVER[1], REPLICA_B[0]: REPLICA_B[1], **DEVICES}.items():
        accounts.set(username, mosquitto_hash(password))
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


async def start_replicas(
    stack: AsyncExitStack, settings: Settings, database: Database, broker: MosquittoProcess
) -> list[Backbone]:
    """Two backbones ``replica-0`` and ``replica-1``, connected; ``stack`` stops them."""
    replicas = []
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
    return replicas
