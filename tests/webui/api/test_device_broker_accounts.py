"""Device changes through the API reach the broker: its password file and a reload."""

from __future__ import annotations

from pathlib import Path

import aiomqtt
import httpx
import pytest

from broker import config
from broker.credentials import PasswordFile
from core.db.engine import Database
from core.settings import Settings
from tests.mqtt.broker import SERVER, RunningBroker, eventually
from tests.webui.conftest import LoginAs
from webui.backbone.server import Backbone

# What a user sees here does not depend on the database: PostgreSQL alone (tests/conftest.py).
pytestmark = pytest.mark.backends("one")


@pytest.fixture
def settings(settings: Settings, mosquitto: RunningBroker) -> Settings:
    """The test settings, managing the accounts of the test's own Mosquitto."""
    assert mosquitto.pid_file is not None
    return settings.model_copy(
        update={
            "broker_password_file": mosquitto.config_file.parent / config.PASSWORD_FILE_NAME,
            "broker_pid_file": mosquitto.pid_file,
            "mqtt_username": SERVER[0],
            "mqtt_password": SERVER[1],
        }
    )


async def _can_connect(broker: RunningBroker, username: str, password: str) -> bool:
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port, username=username, password=password):
            return True
    except aiomqtt.MqttError:
        return False


async def test_created_disabled_and_rotated_devices_reach_the_broker(
    client: httpx.AsyncClient, login_as: LoginAs, mosquitto: RunningBroker, settings: Settings
) -> None:
    admin = await login_as("ada")
    accounts = PasswordFile(settings.broker_password_file)  # type: ignore[arg-type]
    # Once started, the file holds the enabled devices (none yet) and the server account.
    await eventually(lambda: accounts.usernames() == [SERVER[0]])
    assert await _can_connect(mosquitto, *SERVER)

    created = await client.post("/api/v1/devices", json={"id": "kiln-3"}, headers=admin)
    assert created.status_code == 201, created.text
    password = created.json()["mqtt_password"]
    await eventually(lambda: "kiln-3" in accounts.usernames())
    assert await _can_connect(mosquitto, "kiln-3", password)

    rotated = await client.post("/api/v1/devices/kiln-3/credentials", headers=admin)
    new_password = rotated.json()["mqtt_password"]
    assert await _can_connect(mosquitto, "kiln-3", new_password)
    assert not await _can_connect(mosquitto, "kiln-3", password)

    await client.post("/api/v1/devices/kiln-3/disable", headers=admin)
    assert not await _can_connect(mosquitto, "kiln-3", new_password)
    assert accounts.usernames() == [SERVER[0]]
    assert await _can_connect(mosquitto, *SERVER)


async def test_a_broker_that_cannot_be_told_does_not_stop_the_server(
    settings: Settings, database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A stale pid file: the sync logs why, and ingest and presence start all the same."""
    stale = settings.model_copy(update={"broker_pid_file": tmp_path / "gone.pid"})
    backbone = Backbone(stale, database)
    await backbone.start()
    try:
        assert backbone.ingest.pending == 0 and backbone.ingest._workers
        assert any("broker accounts not synced" in r.getMessage() for r in caplog.records)
    finally:
        await backbone.stop()
