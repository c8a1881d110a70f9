"""The processes beside the command bench's server: the fleet of real stations, and the bare
MQTT round trip (a client answering each ``cmd`` on ``cmd/result``) the commands stand on.

Each runs in a process of its own (spawned), so neither shares an event loop with the
server or with the bench's HTTP clients; each says ``ready`` on its queue and runs until its
``stop`` event is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import queue
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiomqtt

from core.mqtt.endpoint import Endpoint
from core.protocol import topics
from core.protocol.commands import PING, Command, Result
from core.protocol.signing import VerifyingKey, generate_signing_key
from desktop.agent.fleet import Fleet, template

Queue = Any  # multiprocessing's queue and event are not subscriptable types at runtime
Event = Any
NODELAY = ((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),)  # as core.mqtt.supervisor's client
CONNECT_S = 60.0  # a hundred stations connecting over the start spread, on a loaded machine
READY_S = CONNECT_S + 60.0  # a spawned process imports the agent, then connects


def fleet(
    port: int,
    credentials: dict[str, str],
    key_pem: bytes,
    sample_hz: float,
    ready: Queue,
    stop: Event,
) -> None:
    """The stations' process: every agent connected, trusting the server's key, until ``stop``."""
    logging.basicConfig(level=logging.WARNING)

    async def run() -> None:
        data_dir = Path(tempfile.mkdtemp(prefix="pp-command-fleet-"))
        keys = (VerifyingKey.from_pem(key_pem),)
        stations = Fleet(
            credentials, template(Endpoint("127.0.0.1", port), data_dir, sample_hz, keys)
        )
        await stations.start()
        async with asyncio.timeout(CONNECT_S):
            while stations.connected() < len(stations.agents):  # noqa: ASYNC110 (a bench)
                await asyncio.sleep(0.1)
        ready.put("ready")
        await asyncio.to_thread(stop.wait)
        await stations.stop()

    asyncio.run(run())


def echo(port: int, device_id: str, password: str, ready: Queue, stop: Event) -> None:
    """A bare station: each ``cmd`` answered at once on ``cmd/result`` (QoS 1), nothing checked."""
    answer = Result(device_id, str(uuid.uuid4()), "succeeded", "answered", _ping_result()).encode()

    async def run() -> None:
        async with aiomqtt.Client(
            "127.0.0.1", port, username=device_id, password=password, socket_options=NODELAY
        ) as client:
            await client.subscribe(topics.cmd(device_id), qos=2)
            answering = asyncio.get_running_loop().create_task(_answer(client, answer))
            ready.put("ready")
            await asyncio.to_thread(stop.wait)
            answering.cancel()

    async def _answer(client: aiomqtt.Client, payload: bytes) -> None:
        async for _message in client.messages:
            await client.publish(topics.cmd_result(device_id), payload, qos=1)

    asyncio.run(run())


class Helper:
    """A spawned process (the fleet, the echo) that says ready and runs until stopped."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self.ready, self.stop_event = context.Queue(), context.Event()
        self.process = context.Process(target=target, args=(*args, self.ready, self.stop_event))
        self.process.start()
        assert self.process.pid is not None  # started
        self.pid: int = self.process.pid

    async def wait_ready(self) -> None:
        """Until the process says it is ready (RuntimeError if it dies or takes too long)."""
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            with contextlib.suppress(queue.Empty):
                await asyncio.to_thread(self.ready.get, True, 0.5)
                return
            if not self.process.is_alive():
                msg = f"{self.process.name} exited ({self.process.exitcode}) before it was ready"
                raise RuntimeError(msg)
        msg = f"{self.process.name} was not ready in {READY_S:.0f} s"
        raise RuntimeError(msg)

    def stop(self) -> None:
        """Ask it to stop; kill it if it does not."""
        self.stop_event.set()
        self.process.join(30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


def _ping_result() -> dict[str, int]:
    return {"station_time_ms": int(time.time() * 1000), "uptime_s": 0}


async def mqtt_round_trips(
    port: int, account: tuple[str, str], device_id: str, count: int
) -> list[float]:
    """Milliseconds from a signed-Ping-sized QoS 2 publish to the echo's answer, one at a time."""
    now = int(time.time() * 1000)
    command = Command(str(uuid.uuid4()), device_id, PING, {}, now, now + 30_000)
    payload = command.signed(generate_signing_key())
    trips: list[float] = []
    async with aiomqtt.Client(
        "127.0.0.1", port, username=account[0], password=account[1], socket_options=NODELAY
    ) as client:
        await client.subscribe(topics.cmd_result(device_id), qos=1)
        answers = aiter(client.messages)
        for _ in range(count):
            start = time.perf_counter()
            await client.publish(topics.cmd(device_id), payload, qos=2)
            await anext(answers)
            trips.append((time.perf_counter() - start) * 1000)
    return trips


def p50(values: list[float]) -> float:
    """The median, or NaN for no values."""
    return statistics.median(values) if values else float("nan")


def p99(values: list[float]) -> float:
    """The 99th percentile (inclusive: it stays within what was measured)."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[98]
