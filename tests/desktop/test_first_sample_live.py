"""A station's samples are marked replayed only when they were: never its first after a start."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from core.db.engine import Database
from core.db.models import TelemetrySample
from desktop.agent.agent import Agent
from desktop.agent.sources import Simulated
from tests.desktop.test_agent_delivery import _config, backbone
from tests.mqtt.broker import RunningBroker, eventually
from webui.backbone.server import Backbone

__all__ = ["backbone"]  # the fixture, shared with the delivery tests


async def _replayed(database: Database) -> dict[int, bool]:
    async with database.session() as session:
        rows = await session.execute(select(TelemetrySample.seq, TelemetrySample.replayed))
        return {seq: replayed for seq, replayed in rows}


async def test_a_started_station_sends_its_first_sample_live(
    backbone: Backbone, database: Database, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    """Before, the first sample was taken before the first connect, so the replay sent it."""
    for start in (1, 2):  # a fresh station, then the same one started again
        agent = Agent(_config(mosquitto, tmp_path, interval=0.5), [Simulated(seed=start)])
        await agent.start()
        try:
            await eventually(lambda: agent.state.acked_seq >= 2 * start, within=15)  # noqa: B023
        finally:
            await agent.stop()
    stored = await _replayed(database)
    assert len(stored) >= 4
    assert not any(stored.values()), f"marked replayed though never offline: {stored}"
