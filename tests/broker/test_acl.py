"""The ACL on a real Mosquitto: devices confined to their topics, the server sees all."""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest

from core.protocol import topics
from tests.broker.conftest import (
    PASSWORD,
    TIMEOUT,
    LocalBroker,
    client,
    needs_mosquitto,
    received,
)

pytestmark = needs_mosquitto


async def test_a_device_cannot_publish_on_another_devices_topic(local_broker: LocalBroker) -> None:
    async with (
        client(local_broker.port, "server") as server,
        client(local_broker.port, "dev-a") as a,
    ):
        await server.subscribe(topics.all_devices(topics.Kind.TELEMETRY), qos=1)
        # Mosquitto drops a forbidden publish silently (it still sends the PUBACK); ordering
        # proves the negative: the allowed message comes after it on the same connection.
        await a.publish(topics.telemetry("dev-b"), b"forged", qos=1)
        await a.publish(topics.telemetry("dev-a"), b"own", qos=1)
        assert await received(server, 2) == [(topics.telemetry("dev-a"), b"own")]


async def test_a_device_receives_only_its_own_topics(local_broker: LocalBroker) -> None:
    async with (
        client(local_broker.port, "server") as server,
        client(local_broker.port, "dev-a") as a,
    ):
        # Mosquitto grants the wildcard subscription and filters every delivery instead.
        await a.subscribe(topics.all_devices(topics.Kind.CMD), qos=1)
        await a.subscribe(topics.SERVER_STATUS, qos=1)
        await server.publish(topics.cmd("dev-b"), b"for b", qos=1)
        await server.publish(topics.cmd("dev-a"), b"for a", qos=1)
        await server.publish(topics.SERVER_STATUS, b"online", qos=1)
        assert await received(a, 3) == [
            (topics.cmd("dev-a"), b"for a"),
            (topics.SERVER_STATUS, b"online"),
        ]


async def test_a_device_cannot_publish_the_server_status(local_broker: LocalBroker) -> None:
    async with (
        client(local_broker.port, "server") as server,
        client(local_broker.port, "dev-a") as a,
    ):
        await server.subscribe(topics.SERVER_STATUS, qos=1)
        await server.subscribe(topics.status("dev-a"), qos=1)
        await a.publish(topics.SERVER_STATUS, b"offline", qos=1)
        await a.publish(topics.status("dev-a"), b"online", qos=1)
        assert await received(server, 2) == [(topics.status("dev-a"), b"online")]


async def test_the_server_ingests_through_a_shared_subscription(
    local_broker: LocalBroker,
) -> None:
    shared = topics.shared(topics.all_devices(topics.Kind.TELEMETRY))
    async with (
        client(local_broker.port, "server") as server,
        client(local_broker.port, "dev-a") as a,
    ):
        await server.subscribe(shared, qos=1)
        await a.publish(topics.telemetry("dev-b"), b"forged", qos=1)
        await a.publish(topics.telemetry("dev-a"), b"batch", qos=1)
        assert await received(server, 2) == [(topics.telemetry("dev-a"), b"batch")]


async def test_shared_subscribers_split_the_messages(local_broker: LocalBroker) -> None:
    shared = topics.shared(topics.all_devices(topics.Kind.TELEMETRY))
    # One account per replica: a second connection as "server" would take the first's place.
    async with (
        client(local_broker.port, "server") as first,
        client(local_broker.port, "server-2") as second,
        client(local_broker.port, "dev-a") as a,
    ):
        await first.subscribe(shared, qos=1)
        await second.subscribe(shared, qos=1)
        sent = [f"batch {n}".encode() for n in range(6)]
        for payload in sent:
            await a.publish(topics.telemetry("dev-a"), payload, qos=1)
        got = await received(first, 6) + await received(second, 6)
        # Each message reached exactly one replica: none doubled, none lost.
        assert sorted(payload for _, payload in got) == sorted(sent)


SERVER_ONLY = [topics.config_desired, topics.cmd, topics.telemetry_ack, topics.sync_down]


@pytest.mark.skipif(shutil.which("mosquitto_pub") is None, reason="needs mosquitto-clients")
async def test_a_device_cannot_write_its_own_server_topics(local_broker: LocalBroker) -> None:
    """Its retained desired configuration stays the server's; its telemetry still goes."""
    desired = topics.config_desired("dev-a")

    def mosquitto_pub(topic: str, message: str, *flags: str) -> None:
        command = ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(local_broker.port)]
        command += ["-u", "dev-a", "-P", PASSWORD, "-q", "1", "-t", topic, "-m", message, *flags]
        # Mosquitto acknowledges a refused publish as if it were taken: the exit says nothing.
        subprocess.run(command, check=True, capture_output=True, timeout=TIMEOUT)

    async with client(local_broker.port, "server") as server:
        await server.publish(desired, b"signed by the server", qos=1, retain=True)
        await server.subscribe(f"{topics.ROOT}/dev/dev-a/#", qos=1)
        assert await received(server, 1) == [(desired, b"signed by the server")]  # retained
        for topic in SERVER_ONLY:
            await asyncio.to_thread(mosquitto_pub, topic("dev-a"), "forged", "-r")
        await asyncio.to_thread(mosquitto_pub, topics.telemetry("dev-a"), "own")
        # Ordering proves the negative: every forgery came before the telemetry.
        assert await received(server, 5) == [(topics.telemetry("dev-a"), b"own")]

    async with client(local_broker.port, "dev-a") as a:
        await a.subscribe(desired, qos=1)
        assert await received(a, 2) == [(desired, b"signed by the server")]
