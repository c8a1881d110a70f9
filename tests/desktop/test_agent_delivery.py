"""A station against a real Mosquitto, the server's ingest and the database: every sample
exactly once, in order, through broker outages, station crashes and server crashes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import func, select

from broker.mosquitto_process import free_port
from core.db.engine import Database
from core.db.models import TelemetryGap, TelemetrySample
from core.mqtt.endpoint import Endpoint
from core.settings import Settings
from desktop.agent.agent import Agent, AgentConfig
from desktop.agent.outbox import DroppedRange, Outbox
from desktop.agent.sources import Simulated
from tests.mqtt.broker import DEVICES, SERVER, RunningBroker, eventually
from tests.mqtt.server import register, running_backbone
from webui.backbone.server import Backbone

DEVICE = "press-07"
CHANNELS = 3  # Simulated: parts, temp, door_open


@pytest.fixture
async def backbone(
    settings: Settings, database: Database, mosquitto: RunningBroker
) -> AsyncIterator[Backbone]:
    await register(database, [DEVICE])
    async with running_backbone(settings, database, mosquitto) as backbone:
        yield backbone


def _config(broker: RunningBroker, data_dir: Path, interval: float = 0.01) -> AgentConfig:
    endpoint = Endpoint("127.0.0.1", broker.port, username=DEVICE, password=DEVICES[DEVICE])
    return AgentConfig(DEVICE, endpoint, data_dir, interval_s=interval, replay_batch=200)


async def _highest_seq(database: Database, stream: str) -> int:
    async with database.session() as session:
        query = select(func.coalesce(func.max(TelemetrySample.seq), 0)).where(
            TelemetrySample.stream == stream
        )
        return int((await session.execute(query)).scalar_one())


async def _backlog_stored(database: Database, stream: str, total: int) -> int:
    """How many of the backlog's seqs (1..total) are stored."""
    async with database.session() as session:
        query = select(func.count()).where(
            TelemetrySample.stream == stream, TelemetrySample.seq <= total
        )
        return int((await session.execute(query)).scalar_one())


async def _stored_seqs(database: Database, stream: str) -> list[int]:
    """The seq of every stored channel value (CHANNELS a sample), in seq order."""
    async with database.session() as session:
        rows = await session.execute(
            select(TelemetrySample.seq, TelemetrySample.readings)
            .where(TelemetrySample.stream == stream)
            .order_by(TelemetrySample.seq)
        )
        return [seq for seq, readings in rows for _ in readings]


def _exactly_once(seqs: list[int], last: int) -> bool:
    return seqs == [seq for seq in range(1, last + 1) for _ in range(CHANNELS)]


@pytest.mark.production_database
async def test_a_broker_outage_loses_nothing_and_doubles_nothing(
    backbone: Backbone, database: Database, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    agent = Agent(_config(mosquitto, tmp_path), [Simulated(seed=7)])
    await agent.start()
    try:
        await eventually(lambda: agent.state.acked_seq >= 20)
        await mosquitto.stop()
        await eventually(lambda: not agent.supervisor.connected)
        offline_from = agent.state.last_seq
        await asyncio.sleep(2)  # sampling goes on into the outbox
        assert agent.state.depth >= 50 and agent.state.last_seq - offline_from >= 50
        await mosquitto.start()
        await eventually(lambda: agent.supervisor.connected, within=15)
        await asyncio.sleep(0.5)
    finally:
        await agent.stop()
    last = agent.outbox.next_seq - 1
    # Stopped: whatever was sampled last may still be unacked; a restart delivers it.
    again = Agent(_config(mosquitto, tmp_path, interval=3600), [Simulated(seed=8)])
    await again.start()
    try:
        await eventually(lambda: again.state.acked_seq >= last, within=20)
    finally:
        await again.stop()
    seqs = await _stored_seqs(database, agent.state.stream)
    assert _exactly_once([s for s in seqs if s <= last], last)
    assert Outbox(tmp_path / f"{DEVICE}.outbox.db").depth <= 1  # at most the restart's sample


_STATION = [sys.executable, "-m", "core.cli", "agent", "--device", DEVICE, "--password-stdin"]


async def _station_process(broker: RunningBroker, data_dir: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    process = await asyncio.create_subprocess_exec(
        *_STATION,
        "--broker",
        f"mqtt://127.0.0.1:{broker.port}",
        "--data-dir",
        str(data_dir),
        "--interval",
        "3600",  # one sample at start: the test is about the backlog
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        env=env,
    )
    assert process.stdin is not None
    process.stdin.write(f"{DEVICES[DEVICE]}\n".encode())
    await process.stdin.drain()
    process.stdin.close()
    return process


def _backlog(data_dir: Path, count: int) -> str:
    """Fill a station's outbox as if it had sampled offline; returns its stream."""
    outbox = Outbox(data_dir / f"{DEVICE}.outbox.db")
    source = Simulated(seed=1)
    for start in range(0, count, 5000):
        outbox.append(
            [(1_764_170_000_000 + n, source.read()) for n in range(start, min(count, start + 5000))]
        )
    outbox.close()
    return outbox.stream


@pytest.mark.production_database
async def test_a_station_killed_mid_replay_still_delivers_every_seq_once(
    backbone: Backbone, database: Database, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    total = 20_000
    stream = _backlog(tmp_path, total)
    station = await _station_process(mosquitto, tmp_path)
    await eventually(lambda: backbone.metrics.rows_stored._value.get() >= 3 * 2_000, within=30)
    os.kill(station.pid, signal.SIGKILL)
    await station.wait()
    # The station's own first sample (seq total + 1) went live at once; the backlog had not.
    assert await _backlog_stored(database, stream, total) < total, "the replay ended first"
    station = await _station_process(mosquitto, tmp_path)
    try:
        async with asyncio.timeout(60):
            while await _backlog_stored(database, stream, total) < total:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
    finally:
        station.send_signal(signal.SIGTERM)
        await station.wait()
    seqs = await _stored_seqs(database, stream)
    assert _exactly_once(seqs[: CHANNELS * total], total)


@pytest.mark.production_database
async def test_past_the_cap_the_dropped_range_reaches_the_server(
    backbone: Backbone, database: Database, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    """Offline past a 40-sample cap: the oldest go, the server learns exactly which, the
    watermark passes them, and everything else arrives."""
    await mosquitto.stop()
    config = replace(_config(mosquitto, tmp_path, interval=3600), max_rows=40)
    agent = Agent(config, [Simulated(seed=3)])
    await agent.start()
    try:
        for _ in range(99):
            await agent.sample_once()
        await eventually(lambda: agent.outbox.next_seq == 101)  # with the sampler's first one
        assert agent.state.depth == 40
        assert agent.outbox.dropped() == [DroppedRange(1, 60, 60, "outbox_cap")]
        assert [e.text for e in agent.state.events if e.kind == "cap"] == [
            "outbox cap (40) reached: dropped seqs 1..1"  # logged once, when it began
        ]
        await mosquitto.start()
        await eventually(lambda: agent.state.acked_seq >= 100, within=15)
        assert agent.outbox.dropped() == []
    finally:
        await agent.stop()
    async with database.session() as session:
        gaps = (await session.execute(select(TelemetryGap))).scalars().all()
    assert [(g.first_seq, g.last_seq, g.reason) for g in gaps] == [(1, 60, "outbox_cap")]
    stored = sorted(set(await _stored_seqs(database, agent.state.stream)))
    assert stored[:40] == list(range(61, 101))  # all the kept ones (and later live ones)


async def _server_process(
    settings: Settings, broker: RunningBroker, log: Path
) -> asyncio.subprocess.Process:
    """``precisionpulse serve`` on the test database and broker, once its link is up."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env |= {
        "PP_DATABASE_URL": settings.database_url,
        "PP_MQTT_URL": f"mqtt://127.0.0.1:{broker.port}",
        "PP_MQTT_USERNAME": SERVER[0],
        "PP_MQTT_PASSWORD": SERVER[1],
        "PP_MQTT_CLIENT_ID": "pp-test-server",
    }
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "core.cli", "serve", "--port", str(port),
            env=env, stdout=output, stderr=output,
        )  # fmt: skip

    def linked() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=1) as r:
                return bool(json.load(r)["broker"]["state"] == "connected")
        except OSError:
            return False

    async with asyncio.timeout(60):
        while not await asyncio.to_thread(linked):
            assert process.returncode is None, f"the server exited; see {log}"
            await asyncio.sleep(0.2)
    return process


@pytest.mark.production_database
async def test_a_server_killed_mid_ingest_loses_nothing_the_station_deleted(
    settings: Settings, database: Database, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    total = 30_000
    await register(database, [DEVICE])
    stream = _backlog(tmp_path, total)
    server = await _server_process(settings, mosquitto, tmp_path / "server.log")
    agent = Agent(_config(mosquitto, tmp_path, interval=3600), [Simulated(seed=2)])
    await agent.start()
    try:
        await eventually(lambda: agent.state.acked_seq >= 2_000, within=30)
        server.kill()
        await server.wait()
        deleted = agent.outbox.acked_seq  # the station has deleted every seq up to here
        assert deleted < total, "the replay ended before the kill"
        stored = set(await _stored_seqs(database, stream))
        assert set(range(1, deleted + 1)) <= stored
        server = await _server_process(settings, mosquitto, tmp_path / "server.log")
        await eventually(lambda: agent.state.acked_seq > total, within=60)
        # What the killed server held unstored was resent when it came back, not 5 s later.
        said = [event.text for event in agent.state.events]
        assert any(text.startswith("the server is back: resending") for text in said), said
    finally:
        await agent.stop()
        server.terminate()
        await server.wait()
    assert _exactly_once((await _stored_seqs(database, stream))[: CHANNELS * total], total)
