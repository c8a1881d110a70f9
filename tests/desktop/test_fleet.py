"""A fleet of simulated stations in one process, against a real broker and the server."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from broker import config
from broker.credentials import PasswordFile, reload_broker
from core.db.engine import Database
from core.db.models import TelemetrySample
from core.mqtt.endpoint import Endpoint
from core.passwords import mosquitto_hash
from core.settings import Settings
from desktop.agent.fleet import Fleet, new_credentials, template
from tests.mqtt.broker import RunningBroker, eventually
from tests.mqtt.server import register, running_backbone


@pytest.mark.production_database
async def test_thirty_stations_each_deliver_every_sample_once(
    settings: Settings, database: Database, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    credentials = new_credentials("sim", 30)
    accounts = PasswordFile(mosquitto.config_file.parent / config.PASSWORD_FILE_NAME)
    for device_id, password in credentials.items():
        accounts.set(device_id, mosquitto_hash(password))
    assert mosquitto.pid_file is not None
    reload_broker(mosquitto.pid_file)
    await register(database, credentials)
    endpoint = Endpoint("127.0.0.1", mosquitto.port)
    fleet = Fleet(credentials, template(endpoint, tmp_path, rate_hz=5))
    async with running_backbone(settings, database, mosquitto):
        await fleet.start()
        try:
            await eventually(lambda: fleet.connected() == 30)
            # Until every station has sampled the five rows the assertions below ask for.
            await eventually(lambda: all(a.outbox.next_seq - 1 >= 5 for a in fleet.agents))
            sampled = {a.config.device_id: a.outbox.next_seq - 1 for a in fleet.agents}
            await eventually(
                lambda: all(a.state.acked_seq >= sampled[a.config.device_id] for a in fleet.agents)
            )
        finally:
            await fleet.stop()
    streams = {a.state.stream: sampled[a.config.device_id] for a in fleet.agents}
    assert len(streams) == 30 and min(streams.values()) >= 5
    async with database.session() as session:
        query = select(
            TelemetrySample.stream,
            func.count(func.distinct(TelemetrySample.seq)),
            func.max(TelemetrySample.seq),
        ).group_by(TelemetrySample.stream)
        per_stream = {stream: (count, top) for stream, count, top in await session.execute(query)}
    for stream, last in streams.items():
        count, top = per_stream[stream]
        assert count == top >= last  # seqs 1..top, each once (more may follow the snapshot)
