"""The station's replay: spliced from the outbox as the protocol encodes it, paced by the
server's ack watermark, and never in front of live samples (issue 15)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import aiomqtt
import pytest

from core.mqtt.endpoint import Endpoint
from core.protocol import topics
from core.protocol.messages import Ack
from core.protocol.telemetry import DEFAULT_LIMITS, Batch, Gap, encode_batch, parse_batch
from desktop.agent.agent import Agent, AgentConfig
from desktop.agent.outbox import Outbox
from desktop.agent.replay import MESSAGE_BUDGET, replay_message
from desktop.agent.sources import Simulated
from tests.mqtt.broker import DEVICES, SERVER, RunningBroker, eventually

DEVICE = "press-07"
BACKLOG, BATCH, AHEAD = 2_000, 100, 500


def test_a_replay_message_is_what_the_protocol_encodes_of_the_stored_samples(
    tmp_path: Path,
) -> None:
    outbox = Outbox(tmp_path / "o.db")
    values = {"temp": Decimal("41.3750"), "parts": 7, "door": False, "big": Decimal("1E+5")}
    outbox.append([(1_764_170_000_000 + n, values) for n in range(3)])
    for gaps in ([], [Gap(1, 2)]):
        spliced = replay_message(DEVICE, outbox.stream, outbox.rows(0, 10), gaps)
        encoded = encode_batch(
            device_id=DEVICE,
            stream=outbox.stream,
            origin="replay",
            samples=outbox.pending(0, 10),
            gaps=gaps,
        )
        assert spliced == encoded
    outbox.close()


class _Server:
    """The server's side of the broker, with no ingest: it records what arrives, in order,
    and acks only when told."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.arrivals: list[tuple[str, list[int]]] = []  # (origin, seqs) per message
        self.largest = 0  # bytes of the largest replay message

    async def read(self) -> None:
        async for message in self.client.messages:
            assert isinstance(message.payload, bytes)
            batch = parse_batch(message.payload, DEVICE)  # as the server's ingest reads it
            assert isinstance(batch, Batch), batch
            self.arrivals.append((batch.origin, [s.seq for s in batch.samples]))
            if batch.origin == "replay":
                self.largest = max(self.largest, len(message.payload))

    def replayed(self) -> int:
        return sum(len(seqs) for origin, seqs in self.arrivals if origin == "replay")

    def live_after(self, index: int) -> int:
        return sum(1 for origin, _ in self.arrivals[index:] if origin == "live")


@pytest.fixture
async def server(mosquitto: RunningBroker) -> AsyncIterator[_Server]:
    client = aiomqtt.Client(
        "127.0.0.1", mosquitto.port, username=SERVER[0], password=SERVER[1], identifier="srv"
    )
    async with client:
        await client.subscribe(topics.telemetry(DEVICE), qos=0)
        await client.subscribe(topics.telemetry_replay(DEVICE), qos=1)
        server = _Server(client)
        reader = asyncio.get_running_loop().create_task(server.read())
        yield server
        reader.cancel()


async def test_the_replay_runs_ahead_of_the_acks_by_its_window_and_live_goes_past_it(
    mosquitto: RunningBroker, server: _Server, tmp_path: Path
) -> None:
    endpoint = Endpoint("127.0.0.1", mosquitto.port, username=DEVICE, password=DEVICES[DEVICE])
    config = AgentConfig(
        DEVICE, endpoint, tmp_path, interval_s=0.01, replay_batch=BATCH, replay_ahead=AHEAD
    )
    agent = Agent(config, [Simulated(seed=3)])
    agent.outbox.append([(1_764_170_000_000 + n, {"parts": n}) for n in range(BACKLOG)])
    await agent.start()
    try:
        await eventually(lambda: server.replayed() == AHEAD)
        stalled = len(server.arrivals)
        # No ack: the replay waits for one while live samples keep going out.
        await eventually(lambda: server.live_after(stalled) >= 20)
        assert server.replayed() == AHEAD
        ack = Ack(DEVICE, agent.outbox.stream, AHEAD)
        await server.client.publish(topics.telemetry_ack(DEVICE), ack.encode(), qos=1)
        await eventually(lambda: server.replayed() == 2 * AHEAD)  # the window moved, by AHEAD
        stalled = len(server.arrivals)
        await eventually(lambda: server.live_after(stalled) >= 20)
        assert server.replayed() == 2 * AHEAD
    finally:
        await agent.stop()
    replayed = [seq for origin, seqs in server.arrivals if origin == "replay" for seq in seqs]
    assert replayed == list(range(1, 2 * AHEAD + 1))  # in seq order, each once


async def test_wide_samples_are_replayed_in_messages_the_server_accepts(
    mosquitto: RunningBroker, server: _Server, tmp_path: Path
) -> None:
    """A batch of 500 samples of 256 channels would be ~4 MB: past the payload limit."""
    endpoint = Endpoint("127.0.0.1", mosquitto.port, username=DEVICE, password=DEVICES[DEVICE])
    agent = Agent(AgentConfig(DEVICE, endpoint, tmp_path, interval_s=3600), [Simulated(seed=1)])
    wide = {f"ch{n:03d}": Decimal("12345.678901") for n in range(256)}
    agent.outbox.append([(1_764_170_000_000 + n, wide) for n in range(100)])
    await agent.start()
    try:
        await eventually(lambda: server.replayed() >= 100)
    finally:
        await agent.stop()
    assert len(server.arrivals) > 1
    assert server.largest <= MESSAGE_BUDGET + 1_000 <= DEFAULT_LIMITS.max_payload_bytes
