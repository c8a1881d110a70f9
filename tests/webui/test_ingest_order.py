"""Ingest's scheduling, without a broker or a database: live before replay at every step,
and a replay within its writers however much of it waits (issue 15)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import pytest

from core.db.engine import Database
from core.mqtt.routing import Router
from core.protocol import topics
from core.protocol.telemetry import Batch, Sample, encode_batch
from core.services.telemetry import store
from tests.mqtt.broker import eventually
from webui.backbone.directory import DeviceDirectory, Standing
from webui.backbone.ingest import Ingest, IngestOptions
from webui.backbone.metrics import Metrics

DEVICE = "press-07"


class _Enabled:
    """A directory where every device is enabled."""

    async def standing(self, device_id: str) -> Standing:
        return Standing.ENABLED


class _Postgres:
    """What ingest asks of its database itself; the store is replaced below."""

    dialect = "postgresql"


class _Store:
    """Records each transaction's streams (and when it began and ended) in order; holds
    those of ``hold`` until released, and takes ``replay_s`` over each replay."""

    def __init__(self, hold: str = "", replay_s: float = 0.0) -> None:
        self.hold, self.release, self.replay_s = hold, asyncio.Event(), replay_s
        self.transactions: list[list[str]] = []
        self.times: list[tuple[float, float]] = []

    async def __call__(self, database: Database, batches: Sequence[Batch]) -> store.Stored:
        began = time.monotonic()
        self.transactions.append([batch.stream for batch in batches])
        if any(batch.stream == self.hold for batch in batches):
            await self.release.wait()
        if batches[0].origin == "replay":
            await asyncio.sleep(self.replay_s)
        self.times.append((began, time.monotonic()))
        points = sum(len(s.values) for b in batches for s in b.samples)
        return store.Stored(samples=points, points=points, quarantined=0, watermarks=())


@asynccontextmanager
async def _ingest(options: IngestOptions) -> AsyncIterator[tuple[Ingest, Router]]:
    """Ingest started behind a router that hands it messages as the link would."""
    router = Router()
    ingest = Ingest(
        cast(Database, _Postgres()),
        cast(DeviceDirectory, _Enabled()),
        Metrics(router, lambda: True, lambda: 0),
        publish_ack=_no_ack,
        drop=lambda *_: None,
        options=options,
    )
    for route in ingest.routes():
        router.add(route)
    await ingest.start()
    try:
        yield ingest, router
    finally:
        await ingest.stop()


async def _no_ack(topic: str, payload: bytes) -> None:
    return None


async def _send(router: Router, stream: str, origin: Any) -> None:
    """One single-sample message of ``stream``, on the live or the replay topic."""
    payload = encode_batch(
        device_id=DEVICE, stream=stream, origin=origin, samples=[Sample(1, 1_000, {"parts": 1})]
    )
    topic = topics.telemetry(DEVICE) if origin == "live" else topics.telemetry_replay(DEVICE)
    await router.dispatch(topic, payload)


async def test_a_free_worker_takes_live_before_replay_that_queued_earlier(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = _Store(hold="backlog-1")
    monkeypatch.setattr(store, "store", recorder)
    async with _ingest(IngestOptions(workers=1, max_rows=1)) as (ingest, router):
        await _send(router, "backlog-1", "replay")
        await eventually(lambda: len(recorder.transactions) == 1)  # the only worker, held
        await _send(router, "backlog-2", "replay")
        await eventually(lambda: ingest.pending == 2)  # parsed and queued behind it
        await _send(router, "live", "live")
        recorder.release.set()
        await ingest.drain()
    assert recorder.transactions == [["backlog-1"], ["live"], ["backlog-2"]]


async def test_replay_waits_for_its_writer_while_live_takes_a_free_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = _Store(hold="backlog-1")
    monkeypatch.setattr(store, "store", recorder)
    options = IngestOptions(workers=3, replay_writers=1, max_rows=1)  # a message a transaction
    async with _ingest(options) as (ingest, router):
        await _send(router, "backlog-1", "replay")
        await eventually(lambda: len(recorder.transactions) == 1)  # the replay writer, held
        for n in range(2, 5):
            await _send(router, f"backlog-{n}", "replay")
        await eventually(lambda: ingest.pending == 4)  # parsed and queued behind it
        await _send(router, "live", "live")
        await eventually(lambda: ["live"] in recorder.transactions)
        await asyncio.sleep(0.05)  # two workers idle: neither may take the waiting replay
        assert recorder.transactions == [["backlog-1"], ["live"]]
        recorder.release.set()
        await ingest.drain()
    assert [t for t in recorder.transactions if t != ["live"]] == [
        [f"backlog-{n}"] for n in range(1, 5)
    ]


def test_replay_writers_leave_a_worker_for_live() -> None:
    with pytest.raises(ValueError, match="leave a worker for live"):
        IngestOptions(workers=3, replay_writers=3)


async def test_replay_takes_its_share_of_time_and_live_goes_in_the_pauses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recorder = _Store(replay_s=0.1)
    monkeypatch.setattr(store, "store", recorder)
    options = IngestOptions(workers=2, max_rows=1, replay_share=0.5)
    async with _ingest(options) as (ingest, router):
        for n in (1, 2):
            await _send(router, f"backlog-{n}", "replay")
        await eventually(lambda: len(recorder.times) == 1)  # the first replay, 0.1 s
        await _send(router, "live", "live")  # in the pause after it: stored at once
        await ingest.drain()
    assert recorder.transactions == [["backlog-1"], ["live"], ["backlog-2"]]
    (_, first_end), (live_began, _), (second_began, _) = recorder.times
    assert live_began - first_end < 0.05
    assert second_began - first_end >= 0.1 * (1 / 0.5 - 1) - 0.01  # the replay's pause


class _EarlyTimers(asyncio.SelectorEventLoop):
    """A loop whose timers fire 2 ms early, as uvloop's may (its clock counts whole ms)."""

    def call_at(self, when: float, callback: Any, *args: Any, context: Any = None) -> Any:
        return super().call_at(when - 0.002, callback, *args, context=context)


def test_a_replay_waiting_out_the_pause_is_stored_on_a_loop_whose_timers_fire_early(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server runs on uvloop: a pause that ends by comparing clocks would stall there
    until the next message arrived (a station's replay stalled 5 s at a time so)."""
    recorder = _Store(replay_s=0.05)
    monkeypatch.setattr(store, "store", recorder)

    async def replay_two() -> None:
        options = IngestOptions(workers=2, max_rows=1, replay_share=0.5)
        async with _ingest(options) as (ingest, router):
            await _send(router, "backlog-1", "replay")
            await eventually(lambda: len(recorder.transactions) == 1)
            await _send(router, "backlog-2", "replay")  # nothing arrives after it
            async with asyncio.timeout(2):
                await ingest.drain()

    with asyncio.Runner(loop_factory=_EarlyTimers) as runner:
        runner.run(replay_two())
    assert recorder.transactions == [["backlog-1"], ["backlog-2"]]
