"""Ingest end to end: a real Mosquitto, the server's backbone, and the test database.

Devices publish as a station would (their own credentials, their own topics); the server
stores, acks and counts. Every vector of the shared protocol file goes through this path.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from core.db.engine import Database
from core.db.models import QuarantinedSample, TelemetrySample
from core.mqtt.endpoint import Endpoint
from core.mqtt.link import Backoff, NotConnectedError, Options
from core.mqtt.routing import Route
from core.mqtt.supervisor import Supervisor
from core.protocol import topics
from core.protocol.drops import Drop
from core.protocol.messages import Ack
from core.protocol.telemetry import Batch, Sample, encode_batch, parse_batch, value_type
from core.services.telemetry import store
from core.settings import Settings
from tests.mqtt.broker import DEVICES, RunningBroker, eventually
from tests.mqtt.server import register, running_backbone
from webui.backbone.server import Backbone

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "telemetry-vectors.json").read_text()
)["vectors"]


@pytest.fixture
async def backbone(
    settings: Settings, database: Database, mosquitto: RunningBroker
) -> AsyncIterator[Backbone]:
    """The server's MQTT side, connected as the server account, with the test devices."""
    # "ghost" stays unknown to the server; "retired" is disabled.
    await register(database, ["press-07", "lathe-1"], disabled=["retired"])
    async with running_backbone(settings, database, mosquitto) as backbone:
        yield backbone


class Station:
    """A device's MQTT client: publishes batches and collects the acks it is sent."""

    def __init__(self, client: aiomqtt.Client, device_id: str) -> None:
        self.client, self.device_id = client, device_id
        self.acks: dict[str, int] = {}
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Station:
        await self.client.__aenter__()
        await self.client.subscribe(topics.telemetry_ack(self.device_id), qos=1)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._reader is not None
        self._reader.cancel()
        await self.client.__aexit__(None, None, None)

    async def _read(self) -> None:
        async for message in self.client.messages:
            assert isinstance(message.payload, bytes)
            ack = Ack.parse(message.payload, self.device_id)
            assert isinstance(ack, Ack), ack
            self.acks[ack.stream] = max(self.acks.get(ack.stream, 0), ack.acked_seq)

    async def publish(self, payload: bytes, *, replay: bool = True, device: str = "") -> None:
        topic = (topics.telemetry_replay if replay else topics.telemetry)(device or self.device_id)
        await self.client.publish(topic, payload, qos=1 if replay else 0)


def station(broker: RunningBroker, device_id: str, password: str | None = None) -> Station:
    client = aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        username=device_id,
        password=password or DEVICES[device_id],
        identifier=f"station-{device_id}",
    )
    return Station(client, device_id)


def _batch(device: str, stream: str, *seqs: int, origin: str = "replay") -> bytes:
    samples = [Sample(seq, 1_764_170_000_000 + seq, {"parts": seq, "on": True}) for seq in seqs]
    return encode_batch(device_id=device, stream=stream, origin=origin, samples=samples)  # type: ignore[arg-type]


async def _held(database: Database, **where: Any) -> int:
    async with database.session() as session:
        query = select(func.count()).select_from(QuarantinedSample).filter_by(**where)
        return int((await session.execute(query)).scalar_one())


async def _points(database: Database, **where: Any) -> list[dict[str, Any]]:
    """The channel values stored, one per sample and channel, by seq and channel."""
    async with database.session() as session:
        samples = (await session.execute(select(TelemetrySample).filter_by(**where))).scalars()
        points = [
            {"seq": s.seq, "channel": c, "type": value_type(v), "value": v}
            for s in samples
            for c, v in s.readings.items()
        ]
    return sorted(points, key=lambda p: (p["seq"], p["channel"]))


def _scale(point: dict[str, Any]) -> object:
    """A decimal's exponent (its scale, which == on Decimal ignores); None for other types."""
    return point["value"].as_tuple().exponent if point["type"] == "decimal" else None


async def test_a_duplicated_batch_is_stored_once_and_acked_twice(
    backbone: Backbone, database: Database, mosquitto: RunningBroker
) -> None:
    async with station(mosquitto, "press-07") as press:
        await press.publish(_batch("press-07", "s1", 1, 2, 3))
        await eventually(lambda: press.acks.get("s1") == 3)
        press.acks.clear()
        await press.publish(_batch("press-07", "s1", 1, 2, 3))
        await eventually(lambda: press.acks.get("s1") == 3)
    assert len(await _points(database)) == 6


async def test_out_of_order_batches_ack_only_once_the_gap_fills(
    backbone: Backbone, database: Database, mosquitto: RunningBroker
) -> None:
    async with station(mosquitto, "press-07") as press:
        await press.publish(_batch("press-07", "s1", 1, 2))
        await eventually(lambda: press.acks.get("s1") == 2)
        await press.publish(_batch("press-07", "s1", 5, 6))
        await press.publish(_batch("press-07", "s1", 4))
        # Acks of one stream reach the station in order: once a later one has come,
        # whatever ack seqs 4..6 earned has come too.
        await press.publish(_batch("press-07", "sentinel", 1))
        await eventually(lambda: press.acks.get("sentinel") == 1)
        assert press.acks["s1"] == 2
        await press.publish(_batch("press-07", "s1", 3, origin="live"), replay=False)
        await eventually(lambda: press.acks.get("s1") == 6)
    assert len(await _points(database, replayed=False)) == 2  # live samples are marked as such


async def test_foreign_unknown_and_disabled_devices_are_refused(
    backbone: Backbone, database: Database, mosquitto: RunningBroker
) -> None:
    async with station(mosquitto, "press-07") as press:
        # The broker lets the server account see everything; the envelope must match.
        await press.publish(_batch("lathe-1", "s1", 1))
        await press.publish(_batch("press-07", "s1", 1))
        await eventually(lambda: press.acks.get("s1") == 1)
    # A device the broker knows but the server does not, and a disabled one.
    async with station(mosquitto, "ghost") as ghost:
        await ghost.publish(_batch("ghost", "s1", 1))
    async with station(mosquitto, "retired") as retired:
        await retired.publish(_batch("retired", "s1", 1))
    dropped = backbone.router.dropped
    await eventually(lambda: dropped["unknown_device"] == 1 and dropped["disabled_device"] == 1)
    assert dropped["device_mismatch"] == 1
    assert len(await _points(database)) == 2  # press-07's one sample of two channels
    exposed = backbone.metrics.render().decode()
    for line in (
        'pp_mqtt_messages_dropped_total{reason="unknown_device"} 1.0',
        'pp_mqtt_messages_dropped_total{reason="device_mismatch"} 1.0',
        "pp_telemetry_rows_total 2.0",
        "pp_broker_link_up 1.0",
        "pp_ingest_batch_rows_count 1.0",
    ):
        assert line in exposed.splitlines(), line


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
async def test_every_protocol_vector_end_to_end(
    vector: dict[str, Any], backbone: Backbone, database: Database, mosquitto: RunningBroker
) -> None:
    payload = vector["payload"]
    raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    expect = vector["expect"]
    async with station(mosquitto, "press-07") as press:
        await press.publish(raw, device=vector["topic_device"])
        # A valid batch on another stream after it: once that is acked, the vector is done.
        await press.publish(_batch("press-07", "sentinel", 1))
        await eventually(lambda: press.acks.get("sentinel") == 1)
        await backbone.ingest.drain()  # another worker may still hold the vector's batch
        stream = payload.get("stream") if isinstance(payload, dict) else None
        if expect != "drop":
            await eventually(lambda: stream in press.acks)
    stored = await _points(database, device_id="press-07", stream=stream) if stream else []
    held = await _held(database, stream=stream) if stream else 0
    if expect == "drop":
        assert (stored, held) == ([], 0)
        assert backbone.router.dropped[vector["reason"]] == 1
        assert stream not in press.acks
        return
    seqs = [sample["seq"] for sample in payload["samples"]]
    contiguous = 0
    while contiguous + 1 in seqs:  # a vector starting past seq 1 leaves a gap: acked 0
        contiguous += 1
    assert press.acks.get(stream) == contiguous
    expected = sorted(
        (
            {**row, "value": Decimal(row["value"]) if row["type"] == "decimal" else row["value"]}
            for row in vector.get("stored", [])
        ),
        key=lambda p: (p["seq"], p["channel"]),
    )
    assert stored == expected
    assert [_scale(p) for p in stored] == [_scale(p) for p in expected]  # == ignores it
    assert held == len(vector.get("quarantined_seqs", seqs if expect == "quarantine" else []))
    if expect != "store":
        async with database.session() as session:
            reasons = set((await session.execute(select(QuarantinedSample.reason))).scalars())
        assert reasons == {vector["reason"]}


async def test_mosquitto_pub_is_stored_and_acked(
    backbone: Backbone, database: Database, mosquitto: RunningBroker
) -> None:
    """A client we did not write speaks the protocol too."""
    payload = _batch("press-07", "cli", 1, 2).decode()
    # mosquitto_rr subscribes to the ack, publishes, and prints the first ack: one client,
    # since a second one as press-07 would take the first one's session (id = username).
    command = ["mosquitto_rr", "-h", "127.0.0.1", "-p", str(mosquitto.port), "-W", "10"]
    command += ["-u", "press-07", "-P", DEVICES["press-07"], "-q", "1", "-m", payload]
    command += ["-t", topics.telemetry_replay("press-07"), "-e", topics.telemetry_ack("press-07")]
    done = await asyncio.to_thread(
        subprocess.run, command, check=True, timeout=15, capture_output=True
    )
    ack = Ack.parse(done.stdout.strip(), "press-07")
    assert isinstance(ack, Ack) and (ack.stream, ack.acked_seq) == ("cli", 2)
    assert len(await _points(database, stream="cli")) == 4


async def test_a_replay_holds_at_most_its_writers_and_live_samples_pass_it(
    backbone: Backbone,
    database: Database,
    mosquitto: RunningBroker,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A backlog takes at most ``replay_writers`` transactions, however much of it waits:
    the other workers stay free, and a live sample is stored and acked while it is held."""
    if database.dialect != "postgresql":
        pytest.skip("SQLite has one writer: live waits for it like everything else")
    original, release = store.store, asyncio.Event()
    held: list[list[str]] = []  # the streams of each replay transaction under way

    async def replays_wait(database: Database, batches: Sequence[Batch]) -> store.Stored:
        if any(batch.origin == "replay" for batch in batches):
            held.append([batch.stream for batch in batches])
            await release.wait()
        return await original(database, batches)

    monkeypatch.setattr(store, "store", replays_wait)
    ingest = backbone.ingest
    writers, workers = ingest.options.replay_writers, ingest.options.workers
    backlog = [f"backlog-{n}" for n in range(workers + 1)]
    async with station(mosquitto, "press-07") as press:
        await press.publish(_batch("press-07", backlog[0], 1))
        await eventually(lambda: len(held) == 1)
        for stream in backlog[1:]:
            await press.publish(_batch("press-07", stream, 1))
        await eventually(lambda: ingest.pending == len(backlog))  # the rest queued, parsed
        await press.publish(_batch("press-07", "live", 1, origin="live"), replay=False)
        await eventually(lambda: press.acks.get("live") == 1)
        assert len(held) == writers and not set(backlog) & set(press.acks)
        release.set()
        await eventually(lambda: all(press.acks.get(stream) == 1 for stream in backlog))
    assert len(await _points(database, stream="live")) == 2


_FUZZ_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
_SAMPLE = st.fixed_dictionaries(
    {"seq": st.integers(-1, 5) | _FUZZ_VALUES, "ts": st.integers(-1, 2**64) | _FUZZ_VALUES},
    optional={"values": st.dictionaries(st.text(max_size=70), _FUZZ_VALUES, max_size=3)},
)
_ENVELOPE = st.fixed_dictionaries(
    {"v": st.sampled_from([1, 1, 2, "1"]), "type": st.sampled_from(["telemetry", "x"])},
    optional={
        "device_id": st.sampled_from(["press-07", "lathe-1", 7]),
        "origin": st.sampled_from(["live", "replay", "later"]),
        "samples": st.lists(_SAMPLE, max_size=3) | _FUZZ_VALUES,
    },
)
_fuzz_streams = iter(range(10**9))


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(message=st.binary(max_size=200) | _ENVELOPE)
async def test_fuzzed_payloads_never_store_a_row_nor_stop_the_link(
    message: bytes | dict[str, Any],
    backbone: Backbone,
    database: Database,
    mosquitto: RunningBroker,
) -> None:
    """Whatever arrives, exactly what the parser accepts is stored, and the link survives."""
    n = next(_fuzz_streams)
    if isinstance(message, dict):
        message = json.dumps({**message, "stream": f"fuzz-{n}"}).encode()
    outcome = parse_batch(message, "press-07")
    expected = sum(len(s.values) for s in outcome.samples) if isinstance(outcome, Batch) else 0
    async with station(mosquitto, "press-07") as press:
        await press.publish(message)
        await press.publish(_batch("press-07", f"sentinel-{n}", 1))
        await eventually(lambda: press.acks.get(f"sentinel-{n}") == 1)
        await backbone.ingest.drain()
    assert backbone.supervisor is not None and backbone.supervisor.connected
    assert len(await _points(database, stream=f"fuzz-{n}")) == expected


@pytest.mark.production_database
async def test_a_broker_crash_mid_stream_loses_nothing_acknowledged(
    backbone: Backbone, database: Database, mosquitto: RunningBroker
) -> None:
    """Kill -9 the broker while a station replays; after the restart both sides reconnect,
    what was acked before the crash is stored, and the resent rest is stored once."""
    total, per_batch = 3000, 20
    acked = 0

    async def on_ack(ack: Ack) -> None:
        nonlocal acked
        acked = max(acked, ack.acked_seq)

    def decode_ack(topic: topics.ParsedTopic, payload: bytes) -> Ack | Drop:
        return Ack.parse(payload, "press-07")

    press = Supervisor(
        Endpoint("127.0.0.1", mosquitto.port, username="press-07", password=DEVICES["press-07"]),
        Options(client_id="press-07", backoff=Backoff(initial=0.05, cap=0.5)),
    )
    await press.route(Route(topics.telemetry_ack("press-07"), 1, decode_ack, on_ack))
    await press.start()

    async def replay() -> None:
        """Send from just past the watermark; after a lost link, start over from there."""
        while acked < total:
            try:
                await press.wait_connected()
                for first in range(acked + 1, total + 1, per_batch):
                    seqs = range(first, min(first + per_batch, total + 1))
                    await press.publish(
                        topics.telemetry_replay("press-07"), _batch("press-07", "r", *seqs), qos=1
                    )
                    await asyncio.sleep(0.005)  # a paced replay: the crash lands mid-stream
                await eventually(lambda: acked >= total, within=2)
            except (NotConnectedError, aiomqtt.MqttError, TimeoutError):
                await asyncio.sleep(0.05)

    sender = asyncio.get_running_loop().create_task(replay())
    await eventually(lambda: acked >= total // 10)
    await mosquitto.kill()
    acked_before_crash = acked
    assert acked_before_crash < total
    assert len(await _points(database, stream="r")) >= 2 * acked_before_crash
    await asyncio.sleep(0.5)
    await mosquitto.start()
    async with asyncio.timeout(30):
        await sender
    await press.stop()
    assert backbone.supervisor is not None and backbone.supervisor.connects == 2
    stored = [point["seq"] for point in await _points(database, stream="r")]
    assert stored == sorted(list(range(1, total + 1)) * 2)  # every seq, two channels, once
