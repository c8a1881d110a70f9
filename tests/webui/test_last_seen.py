"""Last seen: what a device sends moves it, retained copies and wills do not; stored in batches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiomqtt
import pytest
from sqlalchemy import select

from core.db.engine import Database
from core.db.models import Device
from core.mqtt.routing import Route, Router
from core.protocol import topics
from core.protocol.messages import Heartbeat, Status
from core.services import devices
from core.settings import Settings
from tests.mqtt.broker import DEVICES, RunningBroker, eventually
from tests.mqtt.server import register, running_backbone
from webui.backbone.last_seen import LastSeen

T0 = datetime(2025, 11, 26, 22, 41, 7, tzinfo=UTC)


async def _nothing(envelope: object) -> None:
    """A handler that does nothing: these tests watch the router's deliveries."""


def _router(last_seen: LastSeen) -> Router:
    router = Router()
    router.add(
        Route(topics.ALL_STATUS, 1, lambda t, p: Status.parse(p, t.device_id or ""), _nothing)
    )
    router.add(
        Route(topics.ALL_HEARTBEAT, 0, lambda t, p: Heartbeat.parse(p, t.device_id or ""), _nothing)
    )
    router.delivered.add(last_seen.on_delivery)
    return router


async def _stored(database: Database, device_id: str) -> datetime | None:
    async with database.session() as session:
        return await session.scalar(select(Device.last_seen_at).where(Device.id == device_id))


@pytest.mark.backends("one")
async def test_what_moves_the_time_and_what_does_not(database: Database) -> None:
    now = [T0]
    last_seen = LastSeen(database, clock=lambda: now[0])
    router = _router(last_seen)
    online = Status("press-07", "online", stream="a1" * 16).encode()
    await router.dispatch(topics.status("press-07"), online, retained=True)
    assert last_seen.at("press-07") is None  # the broker's copy after our subscribe: old news
    await router.dispatch(topics.status("press-07"), online)
    assert last_seen.at("press-07") == T0

    now[0] = T0 + timedelta(seconds=5)
    beat = Heartbeat("press-07", interval_s=5).encode()
    await router.dispatch(topics.heartbeat("press-07"), beat)
    assert last_seen.at("press-07") == now[0]

    now[0] = T0 + timedelta(seconds=50)
    will = Status("press-07", "offline", "lost").encode()
    await router.dispatch(topics.status("press-07"), will)  # the broker gave up on it
    assert last_seen.at("press-07") == T0 + timedelta(seconds=5)
    await router.dispatch(topics.heartbeat("press-07"), b"not json")  # not attributable
    assert last_seen.at("press-07") == T0 + timedelta(seconds=5)

    now[0] = T0 + timedelta(seconds=60)
    farewell = Status("press-07", "offline", "clean").encode()
    await router.dispatch(topics.status("press-07"), farewell)  # the station said goodbye
    assert last_seen.at("press-07") == now[0]


async def test_times_are_stored_in_batches_and_never_move_back(database: Database) -> None:
    await register(database, ["press-07", "lathe-1"])
    last_seen = LastSeen(database)
    last_seen.heard("press-07", T0)
    last_seen.heard("press-07", T0 + timedelta(seconds=1))
    last_seen.heard("press-07", T0 - timedelta(seconds=9))  # a late report of older news
    last_seen.heard("ghost", T0)  # the server does not know this device
    assert await _stored(database, "press-07") is None  # memory first
    await last_seen.flush()
    assert await _stored(database, "press-07") == T0 + timedelta(seconds=1)
    assert await _stored(database, "lathe-1") is None
    assert last_seen.at("ghost") is None  # forgotten: nothing to remember it for

    async with database.session() as session:  # another replica heard it later
        await devices.record_last_seen(session, seen={"press-07": T0 + timedelta(minutes=1)})
    last_seen.heard("press-07", T0 + timedelta(seconds=2))
    await last_seen.stop()  # flushes
    assert await _stored(database, "press-07") == T0 + timedelta(minutes=1)
    stored = await _stored(database, "press-07")
    assert last_seen.at("press-07", stored) == T0 + timedelta(minutes=1)  # the later of both
    assert last_seen.at("lathe-1", None) is None


@pytest.mark.backends("one")
async def test_a_retained_birth_heard_on_connect_is_not_a_sighting_of_the_device(
    settings: Settings, database: Database, mosquitto: RunningBroker
) -> None:
    """After a server restart the broker replays the status a station left: old news."""
    await register(database, ["press-07"])
    station = aiomqtt.Client(
        "127.0.0.1", mosquitto.port, username="press-07", password=DEVICES["press-07"]
    )
    async with station:
        online = Status("press-07", "online", stream="a1" * 16).encode()
        await station.publish(topics.status("press-07"), online, qos=1, retain=True)
    async with running_backbone(settings, database, mosquitto) as backbone:
        await eventually(lambda: backbone.presence.state("press-07") is not None)
        assert backbone.last_seen.at("press-07") is None
        async with station:
            beat = Heartbeat("press-07", interval_s=5).encode()
            await station.publish(topics.heartbeat("press-07"), beat)
            await eventually(lambda: backbone.last_seen.at("press-07") is not None)
