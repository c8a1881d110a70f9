"""A station runs the configuration the server signs for it: interval, heartbeat, units.

Against a real Mosquitto, the server's backbone and the database: an admin's change
reaches the station, is applied at once, survives a restart offline, and comes back as the
station's report; a configuration signed with another key is refused, and the server sees
the refusal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db.engine import Database
from core.db.models import AuditEntry, DeviceConfig
from core.mqtt.endpoint import Endpoint
from core.protocol import topics
from core.protocol.signing import VerifyingKey, generate_signing_key
from core.services import config_history, device_configs, devices
from core.services.actor import Actor
from core.settings import Settings
from desktop.agent.agent import Agent, AgentConfig
from desktop.agent.outbox import Outbox
from desktop.agent.sources import Simulated
from tests.mqtt.broker import DEVICES, RunningBroker, eventually
from tests.mqtt.server import running_backbone
from webui.backbone.server import Backbone

DEVICE = "press-07"
ADMIN = Actor(name="ada", permissions=frozenset({"devices:read", "devices:write", "config:write"}))


@pytest.fixture
async def backbone(
    settings: Settings, database: Database, mosquitto: RunningBroker
) -> AsyncIterator[Backbone]:
    async with database.session() as session:
        await devices.create_device(session, actor=ADMIN, device_id=DEVICE)
    async with running_backbone(settings, database, mosquitto) as backbone:
        yield backbone


def _agent(
    broker: RunningBroker, data_dir: Path, keys: tuple[VerifyingKey, ...], port: int = 0
) -> Agent:
    endpoint = Endpoint("127.0.0.1", port or broker.port, username=DEVICE, password=DEVICES[DEVICE])
    config = AgentConfig(
        DEVICE, endpoint, data_dir, interval_s=1.0, heartbeat_s=30, server_keys=keys
    )
    return Agent(config, [Simulated(seed=3)])


async def _change(database: Database, **changes: object) -> None:
    """Change the desired configuration as an admin would: the backbone hears of the commit."""
    async with database.session() as session:
        await device_configs.update_desired(session, actor=ADMIN, device_id=DEVICE, changes=changes)


async def _reported(database: Database) -> DeviceConfig:
    async with database.session() as session:
        config = await session.get(DeviceConfig, DEVICE)
        assert config is not None
        return config


async def _outcome(database: Database, version: int) -> str | None:
    """What the server kept of the station's word on ``version``."""
    async with database.session() as session:
        entry = await config_history.get(session, device_id=DEVICE, version=version)
    assert entry is not None
    return entry.outcome


async def _audited(database: Database, action: str) -> list[AuditEntry]:
    async with database.session() as session:
        query = select(AuditEntry).where(AuditEntry.action == action)
        return list(await session.scalars(query))


@pytest.mark.production_database
async def test_a_signed_change_is_applied_reported_and_kept_across_a_restart(
    backbone: Backbone, database: Database, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    trusted = (backbone.signing_key.public_key(),)
    agent = _agent(mosquitto, tmp_path, trusted)
    await agent.start()
    try:
        await agent.supervisor.wait_connected()
        assert agent.state.interval_s == 1.0 and agent.state.config_version == 0
        await _change(database, interval_s=0.05, heartbeat_s=1, units={"temp": "°C"})
        await eventually(lambda: agent.state.config_version == 1)
        assert (agent.state.interval_s, agent.state.heartbeat_s) == (0.05, 1)
        # Sampling follows the new interval at once: ~20 samples a second, not one.
        first = agent.state.last_seq
        started = time.monotonic()
        await eventually(lambda: agent.state.last_seq >= first + 10)
        assert time.monotonic() - started < 5
        # The server hears the station's report, and its heartbeats carry the version.
        await eventually(lambda: _presence_version(backbone) == 1)
        config = await _reported(database)
        assert config.reported_version == 1
        assert config.reported == {"interval_s": 0.05, "heartbeat_s": 1, "units": {"temp": "°C"}}
        assert len(await _audited(database, "device.config.applied")) == 1
        assert await _outcome(database, 1) == "applied"
        assert any("v1 applied" in event.text for event in agent.state.events)
    finally:
        await agent.stop()
    # Offline, the restarted station samples as configured, from its outbox file.
    outbox = Outbox(agent.config.outbox_path)
    assert outbox.applied_config() == (
        1,
        {"interval_s": 0.05, "heartbeat_s": 1, "units": {"temp": "°C"}},
    )
    outbox.close()
    offline = _agent(mosquitto, tmp_path, trusted, port=1)  # nothing listens on port 1
    assert (offline.state.config_version, offline.state.interval_s) == (1, 0.05)
    offline.close()


def _presence_version(backbone: Backbone) -> int | None:
    state = backbone.presence.state(DEVICE)
    return None if state is None else state.config_version


@pytest.mark.production_database
async def test_a_configuration_signed_with_another_key_is_refused_and_reported(
    backbone: Backbone, database: Database, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    stranger = (generate_signing_key().public_key(),)
    agent = _agent(mosquitto, tmp_path, stranger)
    await agent.start()
    try:
        await agent.supervisor.wait_connected()
        await _change(database, interval_s=0.05)
        await eventually(lambda: any("refused" in e.text for e in agent.state.events))
        assert (agent.state.config_version, agent.state.interval_s) == (0, 1.0)
        assert "unknown kid" in next(e.text for e in agent.state.events if "refused" in e.text)

        async with asyncio.timeout(10):
            while not (entries := await _audited(database, "device.config.rejected")):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        assert len(entries) == 1 and entries[0].actor == f"device:{DEVICE}"
        assert (await _reported(database)).reported_version == 0
        # Unverified, its version cannot be trusted: v1 waits for a word it can believe.
        assert await _outcome(database, 1) is None
    finally:
        await agent.stop()


@pytest.mark.production_database
async def test_the_server_publishes_every_configuration_again_on_connect(
    backbone: Backbone, database: Database, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    """A broker that lost its retained messages gets them back when the server reconnects."""
    await _change(database, interval_s=0.5)
    link = backbone.supervisor
    assert link is not None
    await link.publish(topics.config_desired(DEVICE), b"", qos=1, retain=True)  # lost
    await mosquitto.stop()
    await mosquitto.start()
    await eventually(lambda: link.connected)
    agent = _agent(mosquitto, tmp_path, (backbone.signing_key.public_key(),))
    await agent.start()
    try:
        await eventually(lambda: agent.state.config_version == 1)
        assert agent.state.interval_s == 0.5
    finally:
        await agent.stop()
