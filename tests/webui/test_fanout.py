"""Fan-out between server replicas: what one commits reaches the others' live state, once.

PostgreSQL's NOTIFY carries it (SQLite has no LISTEN: a single server runs without). Two
fan-outs on one database stand for two replicas; then two whole backbones on one database
and one Mosquitto, splitting a station's samples through ``$share``, show the same samples,
the same alarm and the same command ends.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from broker.mosquitto_process import MosquittoProcess
from core.db.engine import Database
from core.events import CommandChanged, DeviceChanged, record
from core.protocol.telemetry import Batch, Sample, encode_batch
from core.services import alarms, device_configs
from core.services.actor import Actor
from core.settings import Settings
from tests.mqtt.broker import eventually
from tests.mqtt.server import register
from tests.webui.replicas import start_replicas
from tests.webui.test_ingest import station
from webui.backbone.alarms import Alarms
from webui.backbone.fanout import Fanout
from webui.backbone.fanout_wire import (
    PAYLOAD_BYTES,
    TOLD_REPLAY_MS,
    decode_batches,
    encode,
    recent,
    room,
    telemetry_items,
)
from webui.backbone.hub import Hub

pytestmark = pytest.mark.backends("one")
ADMIN = Actor(name="ada", permissions=frozenset({"devices:write", "config:write"}))
T0 = 1_764_504_000_000


def _batch(device: str, first: int, count: int, stream: str = "s1") -> Batch:
    samples = tuple(
        Sample(seq, T0 + seq, {"temp": Decimal(f"{seq}.25"), "parts": seq, "ok": True})
        for seq in range(first, first + count)
    )
    return Batch(device, stream, "live", samples)


class Boom(Exception):
    """Raised to roll a transaction back."""


@pytest.fixture
async def pair(database: Database) -> AsyncIterator[tuple[Fanout, Fanout]]:
    """Two replicas' fan-outs on the test database (PostgreSQL)."""
    if database.dialect != "postgresql":
        pytest.skip("NOTIFY is PostgreSQL's")
    a, b = Fanout(database, replica="a"), Fanout(database, replica="b")
    await a.start()
    await b.start()
    yield a, b
    await a.stop()
    await b.stop()


async def test_a_commit_reaches_the_other_hub_once_whole_and_in_order(
    pair: tuple[Fanout, Fanout],
) -> None:
    a, b = pair
    hub_a, hub_b = Hub(), Hub()
    a.telemetry.add(hub_a.on_commit)
    b.telemetry.add(hub_b.on_commit)
    big = _batch("press-07", 1, 600)  # ~30 KB: several NOTIFY payloads
    assert len(telemetry_items([big], room("a", "t"))) > 1
    a.on_commit([big, _batch("lathe-1", 1, 2)])
    await eventually(lambda: hub_b.cursor("press-07") == 600 and hub_b.cursor("lathe-1") == 2)
    assert [p.ts_ms for p in hub_b.since("press-07", 0)] == [T0 + n for n in range(1, 601)]
    assert hub_b.latest("press-07")["temp"].value == Decimal("600.25")
    assert hub_b.latest("press-07")["ok"].value is True
    b.on_commit([_batch("press-07", 601, 1)])
    await eventually(lambda: hub_a.cursor("press-07") == 1)
    assert hub_a.cursor("lathe-1") == 0  # its own commits never came back to A
    assert hub_b.cursor("press-07") == 600  # nor B's to B
    assert a.received == 1 and b.received > 1


async def test_what_is_queued_at_stop_is_still_told(pair: tuple[Fanout, Fanout]) -> None:
    a, b = pair
    hub = Hub()
    b.telemetry.add(hub.on_commit)
    a.on_commit([_batch("press-07", 1, 3)])
    await a.stop()  # a replica shutting down after its last commit
    await eventually(lambda: hub.cursor("press-07") == 3)


async def test_a_lost_listening_connection_listens_again_and_says_so(
    pair: tuple[Fanout, Fanout], database: Database
) -> None:
    a, b = pair
    hub = Hub()
    b.telemetry.add(hub.on_commit)
    resumed: list[int] = []
    b.resumed.add(resumed.append)
    async with database.raw_connection() as connection:  # as a database restart would
        await connection.execute("SELECT pg_terminate_backend($1)", b.listening_pid)
    await eventually(lambda: resumed == [1])
    a.on_commit([_batch("press-07", 1, 2)])
    await eventually(lambda: hub.cursor("press-07") == 2)


async def test_alarms_stored_while_a_replica_heard_nothing_are_read_again(
    database: Database,
) -> None:
    await register(database, ["press-07"])
    replica = Alarms(database)
    await replica.start()
    await replica.written()
    async with database.session() as session:  # another replica, its news missed
        await alarms.raise_alarm(
            session,
            device_id="press-07",
            channel="temp",
            bound="high",
            threshold=Decimal(90),
            value=Decimal("95.5"),
            at=datetime.now(UTC),
        )
    assert replica.count("press-07") == 0
    await replica.read_all_again()
    assert [a.value for a in replica.active("press-07")] == [Decimal("95.5")]
    await replica.stop()


def test_replayed_samples_older_than_a_live_chart_keeps_are_not_told() -> None:
    now = T0 + 10 * TOLD_REPLAY_MS
    old, new = _batch("press-07", 1, 3), _batch("press-07", 1, 3)
    old = replace(old, origin="replay", samples=tuple(
        replace(s, ts=now - TOLD_REPLAY_MS - 2 + i) for i, s in enumerate(old.samples)
    ))  # fmt: skip
    live = replace(new, samples=tuple(replace(s, ts=now - 2 * TOLD_REPLAY_MS) for s in new.samples))
    [told, live_told] = recent([old, live], now)
    assert [s.seq for s in told.samples] == [3]  # the one inside the window
    assert live_told == live  # live samples are told whatever their time
    assert recent([replace(old, samples=old.samples[:2])], now) == []


def test_payloads_stay_under_notifys_limit_and_lose_no_sample(
    caplog: pytest.LogCaptureFixture,
) -> None:
    batch = _batch("press-07", 1, 2_000)
    for replica in ("a", "replica-" + "x" * 60):  # a long node id leaves less room
        payloads = encode(replica, "t", telemetry_items([batch], room(replica, "t")))
        assert len(payloads) > 10
        assert max(len(p.encode()) for p in payloads) < PAYLOAD_BYTES < 8_000
        told = [b for p in payloads for b in decode_batches(orjson.loads(p)["i"])]
        assert [s for b in told for s in b.samples] == list(batch.samples)
    assert "dropped" not in caplog.text


async def test_a_rolled_back_change_is_told_to_nobody(
    pair: tuple[Fanout, Fanout], database: Database
) -> None:
    _, b = pair
    heard: list[object] = []
    b.devices.add(heard.append)
    b.commands.add(heard.append)
    command = CommandChanged(uuid.uuid4(), "press-07", "succeeded")
    with pytest.raises(Boom):
        async with database.session() as session:
            record(session, DeviceChanged("press-07"))
            raise Boom
    async with database.session() as session:
        record(session, command)
    await eventually(lambda: len(heard) == 1)
    # The rolled-back one was never sent: the committed one, sent after it, came alone.
    await asyncio.sleep(0.05)
    assert heard == [command]


async def test_sqlite_runs_a_single_server_without_fan_out(database: Database) -> None:
    if database.dialect == "postgresql":
        pytest.skip("the single server's case")
    fanout = Fanout(database)
    await fanout.start()
    fanout.on_commit([_batch("press-07", 1, 1)])
    assert not fanout.running and fanout.sent == 0
    await fanout.stop()


# -- two whole replicas -----------------------------------------------------------------


async def test_two_replicas_split_ingest_and_show_the_same_samples_and_alarm(
    settings: Settings, database: Database, replica_broker: MosquittoProcess
) -> None:
    if database.dialect != "postgresql":
        pytest.skip("replicas share a PostgreSQL database")
    await register(database, ["press-07"])
    async with database.session() as session:
        await device_configs.create(session, device_id="press-07")
    async with AsyncExitStack() as stack:
        replicas = await start_replicas(stack, settings, database, replica_broker)
        a, b = replicas
        async with database.session() as session:
            await device_configs.update_desired(
                session,
                actor=ADMIN,
                device_id="press-07",
                changes={"thresholds": {"temp": {"high": "90"}}},
            )
        press = await stack.enter_async_context(station(replica_broker, "press-07"))
        now = int(time.time() * 1000)
        for seq in range(1, 41):
            value = "95.5" if seq == 40 else "20.5"
            sample = Sample(seq, now + seq, {"temp": Decimal(value)})
            batch = encode_batch(device_id="press-07", stream="s1", origin="live", samples=[sample])
            await press.publish(batch, replay=False)
        await eventually(lambda: press.acks.get("s1") == 40)
        await eventually(lambda: a.hub.cursor("press-07") == b.hub.cursor("press-07") == 40)
        ingested = [
            r.metrics.registry.get_sample_value("pp_telemetry_rows_total") for r in replicas
        ]
        assert all(rows for rows in ingested) and sum(filter(None, ingested)) == 40, ingested
        for replica in replicas:  # each sample once, whichever replica stored it
            seqs = sorted(p.ts_ms - now for p in replica.hub.since("press-07", 0))
            assert seqs == list(range(1, 41))
            assert replica.hub.latest("press-07")["temp"].value == Decimal("95.5")
        await eventually(lambda: a.alarms.count("press-07") == b.alarms.count("press-07") == 1)
        for replica in replicas:
            assert replica.last_seen.at("press-07") is not None
            assert b"pp_fanout_payloads_received_total" in replica.metrics.render()
        told = [
            r.metrics.registry.get_sample_value("pp_fanout_payloads_sent_total") for r in replicas
        ]
        assert all(told), told
