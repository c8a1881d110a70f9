"""Presence from retained status, last will and heartbeats, and the offline events it records."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiomqtt
import pytest
from sqlalchemy import select

from core.db.engine import Database
from core.db.models import AuditEntry, OfflineEvent
from core.protocol import topics
from core.protocol.messages import Heartbeat, Status
from core.services import audit, devices
from core.services.offline_events import WENT_OFFLINE, WENT_ONLINE
from core.settings import Settings
from tests.mqtt.broker import DEVICES, RunningBroker, eventually
from tests.mqtt.server import register, running_backbone
from webui.backbone import presence
from webui.backbone.presence import Presence
from webui.backbone.server import Backbone


@pytest.fixture
async def backbone(
    settings: Settings,
    database: Database,
    mosquitto: RunningBroker,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Backbone]:
    monkeypatch.setattr(presence, "SWEEP_SECONDS", 0.05)
    await register(database, ["press-07"])
    async with running_backbone(settings, database, mosquitto) as backbone:
        yield backbone


def _station(broker: RunningBroker) -> aiomqtt.Client:
    will = aiomqtt.Will(
        topics.status("press-07"), Status("press-07", "offline", "lost").encode(), 1, True
    )
    return aiomqtt.Client(
        "127.0.0.1", broker.port, username="press-07", password=DEVICES["press-07"], will=will
    )


async def _events(database: Database) -> list[tuple[str, bool]]:
    """Each offline event's reason and whether it has ended, oldest first."""
    async with database.session() as session:
        rows = await session.scalars(select(OfflineEvent).order_by(OfflineEvent.id))
        return [(event.reason, event.ended_at is not None) for event in rows]


def _status(backbone: Backbone) -> tuple[str, str | None] | None:
    state = backbone.presence.state("press-07")
    return None if state is None else (state.status, state.reason)


async def test_birth_and_clean_stop(
    backbone: Backbone, database: Database, mosquitto: RunningBroker
) -> None:
    async with _station(mosquitto) as station:
        await station.publish(
            topics.status("press-07"), Status("press-07", "online").encode(), qos=1, retain=True
        )
        await eventually(lambda: _status(backbone) == ("online", None))
        assert backbone.presence.online() == 1
        await station.publish(
            topics.status("press-07"),
            Status("press-07", "offline", "clean").encode(),
            qos=1,
            retain=True,
        )
        await eventually(lambda: _status(backbone) == ("offline", "clean"))
    assert await _events(database) == [("clean", False)]
    async with _station(mosquitto) as station:
        await station.publish(
            topics.status("press-07"), Status("press-07", "online").encode(), qos=1, retain=True
        )
        await eventually(lambda: _status(backbone) == ("online", None))
    assert await _events(database) == [("clean", True)]  # the period has ended


async def test_a_station_leaving_an_identity_another_holds_leaves_the_device_online(
    backbone: Backbone, database: Database
) -> None:
    """Two stations behind one identity: the one that stops says goodbye for itself only."""
    await backbone.presence.on_status(Status("press-07", "online", stream="aaaa"))
    await backbone.presence.on_status(Status("press-07", "online", stream="bbbb"))
    await backbone.presence.on_status(Status("press-07", "offline", "clean", "aaaa"))
    await backbone.presence.on_status(Status("press-07", "offline", "lost", "aaaa"))
    assert _status(backbone) == ("online", None)
    assert await _events(database) == []
    await backbone.presence.on_status(Status("press-07", "offline", "clean", "bbbb"))
    assert _status(backbone) == ("offline", "clean")  # the instance online says it left
    assert await _events(database) == [("clean", False)]


_DYING_STATION = """
import asyncio, sys, aiomqtt
async def main():
    will = aiomqtt.Will(sys.argv[2], sys.argv[3].encode(), 1, True)
    async with aiomqtt.Client("127.0.0.1", int(sys.argv[1]), username="press-07",
                              password=sys.argv[4], will=will) as client:
        await client.publish(sys.argv[2], sys.argv[5].encode(), qos=1, retain=True)
        print("up", flush=True)
        await asyncio.sleep(60)
asyncio.run(main())
"""


async def test_a_killed_station_is_lost_by_its_last_will(
    backbone: Backbone, database: Database, mosquitto: RunningBroker
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _DYING_STATION,
        str(mosquitto.port),
        topics.status("press-07"),
        Status("press-07", "offline", "lost").encode().decode(),
        DEVICES["press-07"],
        Status("press-07", "online").encode().decode(),
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    async with asyncio.timeout(10):
        assert await process.stdout.readline() == b"up\n"
    await eventually(lambda: _status(backbone) == ("online", None))
    os.kill(process.pid, signal.SIGKILL)
    await process.wait()
    await eventually(lambda: _status(backbone) == ("offline", "lost"))
    assert await _events(database) == [("lost", False)]


async def test_missed_heartbeats_make_a_device_stale_until_it_beats_again(
    backbone: Backbone, database: Database, mosquitto: RunningBroker
) -> None:
    async with _station(mosquitto) as station:
        beat = Heartbeat("press-07", interval_s=1, uptime_s=5, outbox=42, config_version=3)
        await station.publish(topics.heartbeat("press-07"), beat.encode())
        await eventually(lambda: _status(backbone) == ("online", None))
        state = backbone.presence.state("press-07")
        assert state is not None and (state.outbox, state.config_version) == (42, 3)
        await eventually(lambda: _status(backbone) == ("stale", "stale"), within=6)
        assert await _events(database) == [("stale", False)]
        await station.publish(topics.heartbeat("press-07"), beat.encode())
        await eventually(lambda: _status(backbone) == ("online", None))
    assert await _events(database) == [("stale", True)]


async def test_messages_of_devices_the_server_does_not_know_change_nothing(
    backbone: Backbone, database: Database, mosquitto: RunningBroker
) -> None:
    async with aiomqtt.Client(
        "127.0.0.1", mosquitto.port, username="ghost", password=DEVICES["ghost"]
    ) as ghost:
        await ghost.publish(topics.status("ghost"), Status("ghost", "online").encode(), qos=1)
    async with _station(mosquitto) as station:  # a known device after it, as a marker
        await station.publish(
            topics.status("press-07"), Status("press-07", "online").encode(), qos=1
        )
        await eventually(lambda: _status(backbone) == ("online", None))
    assert backbone.presence.state("ghost") is None and await _events(database) == []


async def _presence_audit(database: Database) -> list[tuple[str, str, str, str | None]]:
    """Each presence entry's action, actor, target and reason, oldest first."""
    async with database.session() as session:
        rows = await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action.in_([WENT_ONLINE, WENT_OFFLINE]))
            .order_by(AuditEntry.id)
        )
        return [
            (
                entry.action,
                entry.actor,
                f"{entry.target_type}:{entry.target_id}",
                (entry.after or {}).get("reason"),
            )
            for entry in rows
        ]


async def test_each_real_change_of_presence_is_audited_once(
    backbone: Backbone, database: Database
) -> None:
    """Online, stale, lost, back, clean stop, back, lost: one entry each, none per beat."""
    beat = Heartbeat("press-07", interval_s=1, uptime_s=5, outbox=0, config_version=1)
    online = Status("press-07", "online")
    me, target = "device:press-07", "device:press-07"
    await backbone.presence.on_heartbeat(beat)  # a station never seen comes online
    for _ in range(3):
        await backbone.presence.on_heartbeat(beat)
    await backbone.presence.on_status(online)  # its birth, after its first heartbeat
    assert await _presence_audit(database) == [(WENT_ONLINE, me, target, None)]
    await eventually(lambda: _status(backbone) == ("stale", "stale"), within=6)
    await backbone.presence.on_status(Status("press-07", "offline", "lost"))  # its will
    await backbone.presence.on_status(Status("press-07", "offline", "lost"))  # said again
    await backbone.presence.on_status(online)
    await backbone.presence.on_status(Status("press-07", "offline", "clean"))
    await backbone.presence.on_status(Status("press-07", "offline", "clean"))
    await backbone.presence.on_heartbeat(beat)  # back by a heartbeat alone
    await backbone.presence.on_heartbeat(beat)
    await backbone.presence.on_status(Status("press-07", "offline", "lost"))
    assert await _presence_audit(database) == [
        (WENT_ONLINE, me, target, None),
        (WENT_OFFLINE, me, target, "stale"),
        (WENT_OFFLINE, me, target, "lost"),  # the stale period was the device gone
        (WENT_ONLINE, me, target, None),
        (WENT_OFFLINE, me, target, "clean"),
        (WENT_ONLINE, me, target, None),
        (WENT_OFFLINE, me, target, "lost"),
    ]
    async with database.session() as session:
        assert (await audit.verify_chain(session)).intact


async def test_a_server_restart_audits_only_what_changed_while_it_was_away(
    backbone: Backbone, database: Database
) -> None:
    """The first news of a device after a restart is a change only if it differs."""
    await backbone.presence.on_status(Status("press-07", "online"))
    async with database.session() as session:
        await devices.record_last_seen(session, seen={"press-07": datetime.now(UTC)})
    restarted = Presence(database, backbone.directory)
    await restarted.on_status(Status("press-07", "online"))  # its retained birth, again
    assert [entry[0] for entry in await _presence_audit(database)] == [WENT_ONLINE]
    await restarted.on_status(Status("press-07", "offline", "lost"))
    again = Presence(database, backbone.directory)
    await again.on_status(Status("press-07", "offline", "lost"))  # the retained will
    await again.on_status(Status("press-07", "online"))
    assert [entry[0] for entry in await _presence_audit(database)] == [
        WENT_ONLINE,
        WENT_OFFLINE,
        WENT_ONLINE,
    ]
