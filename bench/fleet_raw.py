"""The fleet bench's bare baseline: aiomqtt clients publishing live-sized samples, nothing else.

One client per station, under the station's account, publishing one sample a period at
QoS 0 as a live sample goes, with the same channels: no outbox, no acks awaited, no
heartbeat, commands or sync. What is left is the raw cost of the MQTT traffic, to set the
fleet's CPU against. Measured over the same wall-clock window as a fleet step.

Each client also listens for its stream's acks and times them as a station does
(``fleet_stations.Timing``): so with no agents at all (``--bare``) the server, broker and
database get the box to themselves but for this traffic, as with stations on machines of
their own, and the ack lag still says whether they keep up. A sample lost on the way (QoS
0, nothing replays it) stalls its stream's watermark and counts as unacked.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from array import array
from typing import Any

import aiomqtt

from bench.fleet_stations import POLL_S, Channels, Timing, raise_open_files
from core.protocol import topics
from core.protocol.messages import Ack
from core.protocol.telemetry import Sample, encode_batch

Queue = Any  # multiprocessing's queues are not subscriptable types at runtime
CONNECT_S = 30.0  # every client connected by then, or the baseline is given up


def process(
    port: int,
    credentials: dict[str, str],
    rate_hz: float,
    channels: int,
    commands: Queue,
    results: Queue,
) -> None:
    """The baseline process: connect every client, publish through one window, stop."""
    logging.getLogger("mqtt").setLevel(logging.ERROR)  # "pending publish calls" when busy
    raise_open_files()
    asyncio.run(_run(port, credentials, rate_hz, channels, commands, results))


async def _run(
    port: int,
    credentials: dict[str, str],
    rate_hz: float,
    channels: int,
    commands: Queue,
    results: Queue,
) -> None:
    connected, stop = asyncio.Semaphore(0), asyncio.Event()
    counts = [0]
    lags: array[float] = array("d")
    timings: list[Timing] = []

    async def acks(mqtt: aiomqtt.Client, device: str, timing: Timing) -> None:
        async for message in mqtt.messages:
            ack = Ack.parse(bytes(message.payload), device)
            if isinstance(ack, Ack):
                timing.on_ack(ack)

    async def client(n: int, device: str, password: str) -> None:
        async with aiomqtt.Client("127.0.0.1", port, username=device, password=password) as mqtt:
            source, seq, stream = Channels(channels, seed=n), 0, uuid.uuid4().hex
            timing = Timing(stream, source, lags)
            timings.append(timing)
            await mqtt.subscribe(topics.telemetry_ack(device), qos=1)
            listening = asyncio.create_task(acks(mqtt, device, timing))
            connected.release()
            next_at = time.monotonic() + n / len(credentials) / rate_hz  # spread, as stations
            while not stop.is_set():
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                seq += 1
                sample = Sample(seq, int(time.time() * 1000), source.read())
                payload = encode_batch(
                    device_id=device, stream=stream, origin="live", samples=[sample]
                )
                await mqtt.publish(topics.telemetry(device), payload)
                counts[0] += 1
                next_at += 1 / rate_hz
            listening.cancel()

    tasks = [
        asyncio.create_task(client(n, d, p)) for n, (d, p) in enumerate(sorted(credentials.items()))
    ]
    async with asyncio.timeout(CONNECT_S):
        for _ in tasks:
            await connected.acquire()
    results.put(("ready", len(tasks), 0.0))
    start, end, grace = await asyncio.to_thread(commands.get)
    for timing in timings:
        timing.window = (start, end)
    await asyncio.sleep(max(0.0, start - time.time()))
    sent, acked = counts[0], sum(t.acked for t in timings)
    await asyncio.sleep(max(0.0, end - time.time()))
    window_s = time.time() - start
    sent, acked = counts[0] - sent, sum(t.acked for t in timings) - acked
    deadline = time.monotonic() + grace

    def waiting() -> bool:
        return any(t.unacked_lags(time.time()) for t in timings)

    while waiting() and time.monotonic() < deadline:  # noqa: ASYNC110 (a bench)
        await asyncio.sleep(POLL_S)
    unacked = [lag for t in timings for lag in t.unacked_lags(time.time())]
    lags.extend(unacked)  # at what they waited so far: a lower bound, never left out
    figures = {"sent": sent, "acked": acked, "window_s": window_s, "unacked": len(unacked)}
    results.put(("figures", figures | {"lags": lags.tobytes()}))
    stop.set()  # each client leaves its loop and disconnects cleanly
    await asyncio.gather(*tasks, return_exceptions=True)
    results.put(("stopped",))
