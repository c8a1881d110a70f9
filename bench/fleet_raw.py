"""The fleet bench's bare baseline: aiomqtt clients publishing live-sized samples, nothing else.

One client per station, under the station's account, publishing one sample a period at
QoS 0 as a live sample goes, with the same channels: no outbox, no acks awaited, no
heartbeat, commands or sync. What is left is the raw cost of the MQTT traffic, to set the
fleet's CPU against. Measured over the same wall-clock window as a fleet step.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import aiomqtt

from bench.fleet_stations import Channels, raise_open_files
from core.protocol import topics
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

    async def client(n: int, device: str, password: str) -> None:
        async with aiomqtt.Client("127.0.0.1", port, username=device, password=password) as mqtt:
            connected.release()
            source, seq, stream = Channels(channels, seed=n), 0, uuid.uuid4().hex
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

    tasks = [
        asyncio.create_task(client(n, d, p)) for n, (d, p) in enumerate(sorted(credentials.items()))
    ]
    async with asyncio.timeout(CONNECT_S):
        for _ in tasks:
            await connected.acquire()
    results.put(("ready", len(tasks), 0.0))
    start, end, _grace = await asyncio.to_thread(commands.get)
    await asyncio.sleep(max(0.0, start - time.time()))
    sent = counts[0]
    await asyncio.sleep(max(0.0, end - time.time()))
    results.put(("figures", {"sent": counts[0] - sent, "window_s": time.time() - start}))
    stop.set()  # each client leaves its loop and disconnects cleanly
    await asyncio.gather(*tasks, return_exceptions=True)
    results.put(("stopped",))
