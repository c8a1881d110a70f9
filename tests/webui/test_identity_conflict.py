"""Two stations behind one device identity, through a real Mosquitto into the whole server.

The server audits the conflict once, and the API's ``last_seen_at`` follows every message
the device sends, telemetry alone included, and is stored when the server stops.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack
from datetime import datetime

import aiomqtt
import httpx
import pytest
from nicegui import app
from sqlalchemy import func, select

from core.db.engine import Database
from core.db.models import AuditEntry, Device
from core.protocol import topics
from core.protocol.messages import Status
from core.protocol.telemetry import Sample, encode_batch
from core.settings import Settings
from tests.harness import running_app
from tests.mqtt.broker import DEVICES, RunningBroker, eventually
from tests.mqtt.server import register, server_settings
from tests.webui.conftest import ADMIN_PASSWORD
from webui.backbone.identity import ACTION
from webui.services import Services

# A broker, the server and two stations: the conflict does not depend on the database.
pytestmark = pytest.mark.backends("one")

DEVICE = "press-07"
A, B = "a1" * 16, "b2" * 16


class Instance:
    """One station process's MQTT side: its own outbox stream, the same device.

    The broker makes a client's id its username, so the two share one session: each
    message goes out on a connection of its own, as processes knocking each other off do.
    """

    def __init__(self, broker: RunningBroker, stream: str) -> None:
        self.broker, self.stream, self.seq = broker, stream, 0

    async def _publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        async with aiomqtt.Client(
            "127.0.0.1", self.broker.port, username=DEVICE, password=DEVICES[DEVICE]
        ) as client:
            await client.publish(topic, payload, qos=1, retain=retain)

    async def birth(self) -> None:
        status = Status(DEVICE, "online", stream=self.stream)
        await self._publish(topics.status(DEVICE), status.encode(), retain=True)

    async def sample(self) -> None:
        self.seq += 1
        payload = encode_batch(
            device_id=DEVICE,
            stream=self.stream,
            origin="live",
            samples=[Sample(self.seq, int(time.time() * 1000), {"parts": self.seq})],
        )
        await self._publish(topics.telemetry(DEVICE), payload)


async def _last_seen(client: httpx.AsyncClient, headers: dict[str, str]) -> datetime | None:
    response = await client.get(f"/api/v1/devices/{DEVICE}", headers=headers)
    assert response.status_code == 200, response.text
    value = response.json()["last_seen_at"]
    return None if value is None else datetime.fromisoformat(value)


async def _later_than(
    client: httpx.AsyncClient, headers: dict[str, str], before: datetime | None
) -> datetime:
    """The API's ``last_seen_at`` once it is later than ``before`` (polled, for 10 s at most)."""
    async with asyncio.timeout(10):
        while True:
            latest = await _last_seen(client, headers)
            if latest is not None and (before is None or latest > before):
                return latest
            await asyncio.sleep(0.02)


async def _audited(database: Database) -> int:
    async with database.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == ACTION)
        )
        return count or 0


async def test_two_instances_are_one_audited_conflict_and_last_seen_follows_telemetry(
    settings: Settings,
    database: Database,
    mosquitto: RunningBroker,
    accounts: dict[str, str],
) -> None:
    await register(database, [DEVICE])
    async with AsyncExitStack() as stack:
        client = await stack.enter_async_context(running_app(server_settings(settings, mosquitto)))
        services: Services = app.state.services
        backbone = services.backbone
        assert backbone.supervisor is not None
        async with asyncio.timeout(10):
            await backbone.supervisor.wait_connected()
        login = await client.post(
            "/api/v1/auth/login", json={"username": "ada", "password": ADMIN_PASSWORD}
        )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert await _last_seen(client, headers) is None

        first = Instance(mosquitto, A)
        await first.birth()
        await first.sample()
        seen = await _later_than(client, headers, None)
        for _ in range(3):  # telemetry alone, no status: the time still moves
            await first.sample()
            seen = await _later_than(client, headers, seen)
        assert backbone.identity.conflict(DEVICE) is None  # one instance is no conflict

        second = Instance(mosquitto, B)
        await second.birth()
        for _ in range(10):  # the two take turns, as processes knocking each other off do
            await second.sample()
            await first.sample()
            await asyncio.sleep(0.01)
        await eventually(lambda: backbone.identity.conflict(DEVICE) is not None)
        conflict = backbone.identity.conflict(DEVICE)
        assert conflict is not None and conflict.streams == (A, B)
        await second.birth()
        await second.sample()
        await backbone.ingest.drain()
        await backbone.identity.written()
        assert await _audited(database) == 1
        served = await _last_seen(client, headers)
    # Stopped: the server stored the time the API served (the last message arrived before).
    async with database.session() as session:
        stored = await session.scalar(select(Device.last_seen_at).where(Device.id == DEVICE))
    assert stored is not None and served is not None and stored >= served
    assert await _audited(database) == 1
