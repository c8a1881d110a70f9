"""The server's sync wire over a real Mosquitto: pages pushed and pulled, bad messages dropped.

A bare MQTT client stands in for a station: it pulls, reads the signed pages and answers
on its ``sync/down`` with ``read_down``, and sends what no station would — a compromised
one's edits among them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator

import aiomqtt
import pytest
from sqlalchemy import select

from core import edit_keys
from core.db.engine import Database
from core.db.models import AuditEntry
from core.protocol import topics
from core.protocol.signing import VerifyingKey
from core.protocol.sync import Answers, ChangePage, Pull, Up, read_down
from core.rbac import ADMIN, VIEWER
from core.services import device_configs, devices, sync_log, sync_peers, users
from core.settings import Settings
from tests.core.station_edits import edit, station_stamp
from tests.mqtt.broker import DEVICES, RunningBroker, eventually
from tests.mqtt.server import running_backbone
from webui.backbone.server import Backbone

pytestmark = pytest.mark.backends("one")
DEVICE = "press-07"
OTHER = "lathe-1"  # a second enabled station
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


async def test_a_compromised_station_cannot_sign_for_an_admin(
    backbone: Backbone, database: Database, mosquitto: RunningBroker
) -> None:
    """It holds its own account and every password hash, not an Admin's password: its edit
    in her name is refused, audited and counted; her own station's edit is believed."""
    async with database.session() as session:
        ada = await users.create_user(
            session, actor=ROOT, username="ada", password="ada's password", roles=[ADMIN]
        )
        olga = await users.create_user(
            session, actor=ROOT, username="olga", password="a long password", roles=[VIEWER]
        )
        ada_id, olga_id, ada_hash = ada.id, olga.id, ada.password_hash
    disable = ("user", str(olga_id), "is_active", False)
    guess = edit_keys.derive(ada_hash, ada_id)  # all the replica tells about her
    forged = edit(ada_id, "ada", station_stamp(DEVICE), disable, key=guess)
    async with bare_station(mosquitto, backbone) as station:
        await station.send(Up(DEVICE, (forged,), pending=1).encode())
        await eventually(lambda: len(station.answers) == 1)
        [refused] = station.answers[0].answers
        assert (refused.change_id, refused.accepted) == (forged.change_id, False)
        assert refused.reason == "not signed with ada's current password"
        assert await _active(database, olga_id)
        [state] = await _states(database)
        assert (state.accepted, state.refused) == (0, 1)
        async with database.session() as session:
            audited = await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "sync.refused")
            )
            assert [(e.actor, e.target_id) for e in audited] == [(f"ada@{DEVICE}", str(olga_id))]
        real = edit_keys.derive("ada's password", ada_id)  # derived as she signs in there
        signed = edit(ada_id, "ada", station_stamp(DEVICE), disable, key=real)
        await station.send(Up(DEVICE, (signed,)).encode())
        await eventually(lambda: len(station.answers) == 2)
        assert station.answers[1].answers[0].accepted
    assert not await _active(database, olga_id)


async def _active(database: Database, user_id: uuid.UUID) -> bool:
    async with database.session() as session:
        return (await users.get_user(session, user_id)).is_active


async def _pull_all(station: BareStation, since: int) -> list[ChangePage]:
    """Pull from ``since`` page after page, as a station does, until none says more."""
    pages: list[ChangePage] = []
    while True:
        await station.send(Pull(station.device_id, since).encode())
        page = await _page_after(station, since)
        pages.append(page)
        if not page.more:
            return pages
        since = page.cursor


async def _page_after(station: BareStation, after: int) -> ChangePage:
    """The first page the station received that starts at ``after``."""
    await eventually(lambda: any(p.after == after for p in station.pages))
    return next(p for p in station.pages if p.after == after)


async def test_a_catch_up_sends_each_field_once_and_a_push_round_each_station_its_own(
    backbone: Backbone, database: Database, mosquitto: RunningBroker
) -> None:
    async with database.session() as session:
        await devices.create_device(session, actor=ROOT, device_id=OTHER)
        await users.create_user(  # an Admin remains, so edits to others are allowed
            session, actor=ROOT, username="root", password="a long password", roles=["Admin"]
        )
        olga = await users.create_user(
            session, actor=ROOT, username="olga", password="a long password", roles=[VIEWER]
        )
    for n in range(30):  # thirty saves of one field: a catch-up needs only the last
        async with database.session() as session:
            await users.update_user(session, actor=ROOT, user_id=olga.id, display_name=f"O {n}")
    name = ("user", str(olga.id), "display_name")
    async with (
        bare_station(mosquitto, backbone) as press,
        bare_station(mosquitto, backbone, OTHER) as lathe,
    ):
        caught_up = await _pull_all(press, 0)
        names = [
            c.value for p in caught_up for c in p.changes if (c.entity, c.key, c.field) == name
        ]
        assert names == ["O 29"]
        assert caught_up[-1].cursor == await _head(database)
        # One round brings both: the new name to each, a configuration only to its station.
        async with database.session() as session:
            await device_configs.update_desired(
                session, actor=ROOT, device_id=DEVICE, changes={"interval_s": 7.5}
            )
            await users.update_user(session, actor=ROOT, user_id=olga.id, display_name="Olga")
        head = await _head(database)

        def brought(station: BareStation) -> list[ChangePage]:
            return [p for p in station.pages if p.after < head <= p.cursor and p.after > 0]

        await eventually(lambda: bool(brought(press)) and bool(brought(lathe)))
        for station in (press, lathe):
            pushed = [c for p in brought(station) for c in p.changes]
            assert ("user", str(olga.id), "display_name", "Olga") in {
                (c.entity, c.key, c.field, c.value) for c in pushed
            }
            configs = {(c.key, c.field, c.value) for c in pushed if c.entity == "device_config"}
            mine = (DEVICE, "desired.interval_s", 7.5)
            assert (mine in configs) is (station is press)
            assert all(key == station.device_id for key, _, _ in configs)
