"""The chaos proxy: bytes pass unchanged and in order; delay, loss, blackhole and reset act."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest

from bench.chaos.proxy import LOSS_RTO_S, FaultProxy
from broker.mosquitto_process import MosquittoProcess, free_port

TIMEOUT = 5.0  # seconds: every wait that should succeed is bounded by this
SILENCE = 0.5  # seconds of no answer that count as "nothing comes back"

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65_536):
            writer.write(data)
            await writer.drain()
    writer.close()


@pytest.fixture
async def proxy() -> AsyncIterator[FaultProxy]:
    """A proxy in front of an echo server, both on loopback."""
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    proxy = FaultProxy("127.0.0.1", echo.sockets[0].getsockname()[1], seed=18)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
        echo.close()
        await echo.wait_closed()


async def _connect(proxy: FaultProxy) -> Stream:
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", proxy.port), TIMEOUT)


async def _round_trip(stream: Stream, data: bytes, wait: float = TIMEOUT) -> bytes:
    reader, writer = stream
    writer.write(data)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(data)), wait)


async def test_bytes_pass_both_ways_unchanged(proxy: FaultProxy) -> None:
    """Half a megabyte goes up and comes back byte for byte; the counters see all of it."""
    stream = await _connect(proxy)
    data = os.urandom(500_000)
    assert await _round_trip(stream, data) == data
    assert (proxy.stats.bytes_up, proxy.stats.bytes_down) == (len(data), len(data))
    assert proxy.stats.connections == proxy.stats.open == 1
    stream[1].close()


async def test_a_delay_holds_each_chunk_both_ways(proxy: FaultProxy) -> None:
    """A round trip through a 0.15 s delay takes at least 0.3 s: once each way."""
    stream = await _connect(proxy)
    proxy.set_delay(0.15, jitter=0.05)
    started = time.monotonic()
    assert await _round_trip(stream, b"ping") == b"ping"
    assert time.monotonic() - started >= 0.3
    assert proxy.stats.chunks_delayed == 2
    proxy.clear()
    started = time.monotonic()
    await _round_trip(stream, b"pong")
    assert time.monotonic() - started < 0.15
    stream[1].close()


async def test_lost_chunks_wait_for_retransmission_and_keep_their_order(
    proxy: FaultProxy,
) -> None:
    """At 20 % loss, numbered chunks all come back in order, some after an RTO or more."""
    stream = await _connect(proxy)
    proxy.set_loss(0.2)
    reader, writer = stream
    started = time.monotonic()
    sent = b""
    for n in range(20):
        chunk = f"<{n}>".encode()
        sent += chunk
        writer.write(chunk)
        await writer.drain()
        await asyncio.sleep(0.005)  # one read each, most of the time
    assert await asyncio.wait_for(reader.readexactly(len(sent)), TIMEOUT) == sent
    assert proxy.stats.chunks_lost > 0
    assert time.monotonic() - started >= LOSS_RTO_S
    writer.close()


async def test_a_blackhole_answers_nothing_and_its_connections_stay_dead(
    proxy: FaultProxy,
) -> None:
    """Open and new connections go silent; after clear() only new connections work."""
    before = await _connect(proxy)
    assert await _round_trip(before, b"hello") == b"hello"
    proxy.blackhole(True)
    during = await _connect(proxy)  # accepted, as a partitioned far end would seem to be
    for stream in (before, during):
        with pytest.raises(TimeoutError):
            await _round_trip(stream, b"anyone?", wait=SILENCE)
    proxy.clear()
    for stream in (before, during):
        with pytest.raises(TimeoutError):
            await _round_trip(stream, b"still?", wait=SILENCE)
    after = await _connect(proxy)
    assert await _round_trip(after, b"back") == b"back"
    assert proxy.stats.bytes_swallowed > 0
    for _, writer in (before, during, after):
        writer.close()


async def test_reset_all_makes_the_client_see_a_reset(proxy: FaultProxy) -> None:
    """Every open connection is aborted with an RST; new ones work."""
    reader, writer = await _connect(proxy)
    assert await _round_trip((reader, writer), b"hi") == b"hi"
    assert proxy.reset_all() == 1
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(1), TIMEOUT)
    assert proxy.stats.resets == 1
    writer.close()
    again = await _connect(proxy)
    assert await _round_trip(again, b"again") == b"again"
    again[1].close()


@pytest.fixture
async def mosquitto(tmp_path: Path) -> AsyncIterator[MosquittoProcess]:
    """A bare Mosquitto (anonymous, no ACL) on a free loopback port."""
    if shutil.which("mosquitto") is None:
        pytest.skip("needs the mosquitto binary")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    user = pwd.getpwuid(os.geteuid()).pw_name  # as root it would switch to 'mosquitto'
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nuser {user}\n")
    process = MosquittoProcess(conf, port=port)
    await process.start()
    try:
        yield process
    finally:
        await process.kill()


async def _echo_through(port: int, topic: str, payload: bytes) -> bytes:
    async with aiomqtt.Client("127.0.0.1", port, identifier=uuid.uuid4().hex, timeout=TIMEOUT) as c:
        await c.subscribe(topic, qos=1)
        await c.publish(topic, payload, qos=1)
        async with asyncio.timeout(TIMEOUT):
            async for message in c.messages:
                assert isinstance(message.payload, bytes)
                return message.payload
    raise AssertionError("no message")


async def test_mqtt_through_the_proxy_survives_a_reset_by_reconnecting(
    mosquitto: MosquittoProcess,
) -> None:
    """aiomqtt publishes and subscribes through the proxy; a reset is an MqttError; again works."""
    proxy = FaultProxy("127.0.0.1", mosquitto.port)
    port = await proxy.start()
    try:
        async with aiomqtt.Client("127.0.0.1", port, timeout=TIMEOUT) as client:
            await client.subscribe("chaos/t", qos=1)
            await client.publish("chaos/t", b"one", qos=1)
            messages = client.messages
            async with asyncio.timeout(TIMEOUT):
                first = await anext(aiter(messages))
            assert first.payload == b"one"
            assert proxy.reset_all() == 1
            with pytest.raises(aiomqtt.MqttError):
                async with asyncio.timeout(TIMEOUT):
                    await anext(aiter(messages))
        assert await _echo_through(port, "chaos/u", b"two") == b"two"
    finally:
        await proxy.stop()
