"""The supervisor takes messages in as fast as they come, while its event loop is busy.

A server's loop also serves HTTP, and its turns take milliseconds. aiomqtt alone reads one
packet per readable event and hands over one message per turn: against ~20 ms turns, 300
messages a second fell seconds behind (4 s at the median), and command answers waited in
the socket until their commands expired.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time

import aiomqtt

from core.mqtt.endpoint import Endpoint
from core.mqtt.link import Options
from core.mqtt.routing import Route
from core.mqtt.supervisor import Supervisor
from core.protocol import topics
from core.protocol.drops import Drop
from tests.mqtt.broker import DEVICES, SERVER, RunningBroker, eventually

DEVICE = "press-07"
RATE, SECONDS = 300, 3.0  # messages a second from one device, for this long
BUSY_TASKS, BUSY_MS = 20, 1.0  # each turn of the loop runs all of them: ~20 ms a turn
MAX_P99_MS = 1_000  # drained: ~100 ms here; one message a turn: seconds, and growing


def _sent_at(topic: topics.ParsedTopic, payload: bytes) -> float | Drop:
    return float(payload)


def _publish(port: int, stop: threading.Event) -> None:
    """A device publishing its send time at RATE, from a thread with a loop of its own."""

    async def run() -> None:
        async with aiomqtt.Client(
            "127.0.0.1", port, username=DEVICE, password=DEVICES[DEVICE]
        ) as client:
            start = time.perf_counter()
            for n in range(int(RATE * SECONDS)):
                await asyncio.sleep(max(0.0, start + n / RATE - time.perf_counter()))
                await client.publish(topics.telemetry(DEVICE), str(time.time() * 1000), qos=0)
        stop.set()

    asyncio.run(run())


async def _busy(stop: threading.Event) -> None:
    while not stop.is_set():
        until = time.perf_counter() + BUSY_MS / 1000
        while time.perf_counter() < until:
            pass  # work that holds the loop, as a request's handler does between awaits
        await asyncio.sleep(0)


async def test_intake_keeps_up_while_the_event_loop_is_busy(mosquitto: RunningBroker) -> None:
    lags: list[float] = []

    async def received(sent_at: float) -> None:
        lags.append(time.time() * 1000 - sent_at)

    endpoint = Endpoint("127.0.0.1", mosquitto.port, username=SERVER[0], password=SERVER[1])
    supervisor = Supervisor(endpoint, Options(client_id=SERVER[0]))
    await supervisor.route(Route(topics.telemetry(DEVICE), 0, _sent_at, received))
    await supervisor.start()
    try:
        async with asyncio.timeout(10):
            await supervisor.wait_connected()
        sent = threading.Event()
        busy = [asyncio.get_running_loop().create_task(_busy(sent)) for _ in range(BUSY_TASKS)]
        await asyncio.to_thread(_publish, mosquitto.port, sent)
        await asyncio.gather(*busy)
        await eventually(lambda: len(lags) == int(RATE * SECONDS), within=30)
    finally:
        await supervisor.stop()
    p99 = statistics.quantiles(lags, n=100)[98]
    assert p99 < MAX_P99_MS, f"intake fell behind: p50 {statistics.median(lags):.0f} ms"
