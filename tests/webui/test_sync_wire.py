"""The server's sync wire over a real Mosquitto: pages pushed and pulled, bad messages dropped.

A bare MQTT client stands in for a station: it pulls, reads the signed pages and answers
on its ``sync/down`` with ``read_down``, and sends what no station would.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator

import aiomqtt
import pytest

from core.db.engine import Database
from core.protocol import topics
from core.protocol.signing import VerifyingKey
from core.protocol.sync import Answers, ChangePage, Pull, read_down
from core.rbac import VIEWER
from core.services import devices, sync_log, sync_peers, users
from core.settings import Settings
from tests.mqtt.broker import DEVICES, RunningBroker, eventually
from tests.mqtt.server import running_backbone
from webui.backbone.server import Backbone

pytestmark = pytest.mark.backends("one")
DEVICE = "press-07"
RETIRED = "retired"  # registered, disabled
GHOST = "ghost"  # known to the broker, not to the server
ROOT = users.console_actor("root")


@pytest.fixture
async def backbone(
    settings: Settings, database: Database, mosquitto: RunningBroker
) -> AsyncIterator[Backbone]:
    async with database.session() as session:
        await devices.create_device(session, actor=ROOT, device_id=DEVICE)
        await devices.create_device(session, actor=ROOT, device_id=RETIRED)
        await devices.update_device(session, actor=ROOT, device_id=RETIRED, enabled=False)
    async with running_backbone(settings, database, mosquitto) as backbone:
        backbone.sync.page_limit = 10
        yield backbone


class BareStation:
    """A device's sync side, by hand: pulls, and the pages and answers it was sent."""

    def __init__(self, client: aiomqtt.Client, device_id: str, key: VerifyingKey) -> None:
        self.client, self.device_id, self.key = client, device_id, key
        self.pages: list[ChangePage] = []
        self.answers: list[Answers] = []

    async def listen(self) -> None:
        async for message in self.client.messages:
            assert isinstance(message.payload, bytes)
            read = read_down(message.payload, self.device_id, [self.key])
            assert not isinstance(read, str), read
            if isinstance(read, ChangePage):
                self.pages.append(read)
            else:
                self.answers.append(read)

    async def send(self, payload: bytes) -> None:
        await self.client.publish(topics.sync_up(self.device_id), payload, qos=1)


@contextlib.asynccontextmanager
async def bare_station(
    broker: RunningBroker, backbone: Backbone, device_id: str = DEVICE
) -> AsyncIterator[BareStation]:
    async with aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        username=device_id,
        password=DEVICES[device_id],
        identifier=device_id,
        socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
    ) as client:
        await client.subscribe(topics.sync_down(device_id), qos=1)
        station = BareStation(client, device_id, backbone.signing_key.public_key())
        listener = asyncio.create_task(station.listen())
        try:
            yield station
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)


async def _head(database: Database) -> int:
    async with database.session() as session:
        return await sync_log.sequence(session)


async def test_a_pull_is_answered_one_page_at_a_time_and_a_change_is_pushed(
    backbone: Backbone, database: Database, mosquitto: RunningBroker
) -> None:
    async with bare_station(mosquitto, backbone) as station:
        await station.send(Pull(DEVICE, 0, pending=2).encode())
        await eventually(lambda: len(station.pages) == 1)
        first = station.pages[0]
        head = await _head(database)
        assert (first.after, first.head, len(first.changes)) == (0, head, 10)
        assert first.more and first.cursor < head
        states = await _states(database)
        assert (states[0].device_id, states[0].cursor, states[0].pending_up) == (DEVICE, 0, 2)
        # An admin's change goes down on its own, from where the server brought the station.
        async with database.session() as session:
            await users.create_user(
                session, actor=ROOT, username="olga", password="a long password", roles=[VIEWER]
            )
        await eventually(lambda: len(station.pages) == 2)
        pushed = station.pages[1]
        assert pushed.after == head and pushed.cursor == pushed.head > head
        assert {(c.entity, c.field) for c in pushed.changes} >= {("user", "username")}
        assert any(c.value == "olga" for c in pushed.changes)


async def _states(database: Database) -> list[sync_peers.PeerState]:
    async with database.session() as session:
        return await sync_peers.states(session, actor=ROOT)


async def test_bad_messages_and_strangers_are_dropped_and_counted_and_the_server_goes_on(
    backbone: Backbone, database: Database, mosquitto: RunningBroker
) -> None:
    dropped = backbone.router.dropped
    async with bare_station(mosquitto, backbone) as station:
        await station.send(b"not json")
        await station.send(b'{"v":1,"type":"sync.pull","device_id":"press-07","since":-1}')
        await station.send(Pull(RETIRED, 0).encode())  # naming another device
        await eventually(lambda: dropped["malformed"] == 2 and dropped["device_mismatch"] == 1)
        await station.send(Pull(DEVICE, 0).encode())
        await eventually(lambda: len(station.pages) == 1)
    async with bare_station(mosquitto, backbone, RETIRED) as retired:
        await retired.send(Pull(RETIRED, 0).encode())
        await eventually(lambda: dropped["disabled_device"] == 1)
    async with bare_station(mosquitto, backbone, GHOST) as ghost:
        await ghost.send(Pull(GHOST, 0).encode())
        await eventually(lambda: dropped["unknown_device"] == 1)
    assert retired.pages == ghost.pages == []
