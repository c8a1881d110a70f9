"""The embedded broker, both kinds: authenticated routing, refusals, loopback only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import psutil
import pytest

from broker.launcher import BrokerKind, EmbeddedBroker, embedded_broker
from core.passwords import mosquitto_hash
from core.protocol import topics
from tests.broker.conftest import (
    PASSWORD,
    TIMEOUT,
    USERS,
    can_connect,
    client,
    eventually,
    needs_mosquitto,
    received,
)

KINDS = [pytest.param("mosquitto", marks=needs_mosquitto), "amqtt"]


@pytest.fixture(params=KINDS)
async def broker(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    kind: BrokerKind = request.param
    async with embedded_broker(tmp_path, users=USERS, prefer=kind) as running:
        assert running.kind == kind
        yield running


async def test_an_authenticated_device_reaches_the_server(broker: EmbeddedBroker) -> None:
    async with client(broker.port, "server") as server, client(broker.port, "dev-a") as a:
        await server.subscribe(topics.all_devices(topics.Kind.TELEMETRY), qos=1)
        await a.publish(topics.telemetry("dev-b"), b"forged", qos=1)
        await a.publish(topics.telemetry("dev-a"), b"batch", qos=1)
        assert await received(server, 2) == [(topics.telemetry("dev-a"), b"batch")]


async def test_a_device_reads_the_server_status_only(broker: EmbeddedBroker) -> None:
    async with client(broker.port, "server") as server, client(broker.port, "dev-a") as a:
        await a.subscribe(topics.cmd("dev-b"), qos=1)
        await a.subscribe(topics.SERVER_STATUS, qos=1)
        await server.publish(topics.cmd("dev-b"), b"for b", qos=1)
        await server.publish(topics.SERVER_STATUS, b"online", qos=1)
        assert await received(a, 2) == [(topics.SERVER_STATUS, b"online")]


@pytest.mark.parametrize(
    ("username", "password"),
    [("dev-a", "wrong-password"), ("nobody", PASSWORD), (None, None)],
    ids=["wrong-password", "unknown-user", "anonymous"],
)
async def test_bad_credentials_are_refused(
    broker: EmbeddedBroker, username: str | None, password: str | None
) -> None:
    assert not await can_connect(broker.port, username, password)


async def test_users_added_at_run_time_can_connect(broker: EmbeddedBroker) -> None:
    broker.credentials.upsert("press-07", mosquitto_hash(PASSWORD))
    await eventually(lambda: can_connect(broker.port, "press-07"))
    broker.credentials.delete("press-07")

    async def refused() -> bool:
        return not await can_connect(broker.port, "press-07")

    await eventually(refused)


async def test_amqtt_listens_on_loopback_only(tmp_path: Path) -> None:
    async with embedded_broker(tmp_path, users=USERS, prefer="amqtt") as running:
        listening = {
            connection.laddr
            for connection in psutil.Process().net_connections(kind="tcp")
            if connection.status == psutil.CONN_LISTEN and connection.laddr.port == running.port
        }
        assert {address.ip for address in listening} == {"127.0.0.1"}
        assert running.url == f"mqtt://127.0.0.1:{running.port}"


def named(
    broker: EmbeddedBroker, username: str, identifier: str, password: str = PASSWORD
) -> aiomqtt.Client:
    """A client that asks for the client id ``identifier``."""
    return aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        username=username,
        password=password,
        identifier=identifier,
        timeout=TIMEOUT,
    )


@pytest.mark.parametrize("claimed", ["dev-b", "server"])
async def test_a_device_claiming_another_clients_id_takes_no_session(
    broker: EmbeddedBroker, claimed: str
) -> None:
    async with named(broker, claimed, claimed) as victim:
        await victim.subscribe(topics.cmd("dev-b"), qos=1)
        async with named(broker, "dev-a", claimed) as a:  # A is let in, as itself
            await a.publish(topics.telemetry("dev-a"), b"hello", qos=1)
        if claimed == "server":  # the server hears its own messages
            await victim.publish(topics.cmd("dev-b"), b"still there?", qos=1)
        else:
            async with named(broker, "server", "server") as server:
                await server.publish(topics.cmd("dev-b"), b"still there?", qos=1)
        assert await received(victim, 1) == [(topics.cmd("dev-b"), b"still there?")]


async def test_a_refused_login_takes_no_session(broker: EmbeddedBroker) -> None:
    """amqtt acts on a CONNECT's client id before it checks the password."""
    async with named(broker, "server", "server") as server:
        await server.subscribe(topics.all_devices(topics.Kind.TELEMETRY), qos=1)
        with pytest.raises(aiomqtt.MqttCodeError):
            async with named(broker, "server", "server", "wrong-password"):
                pass
        async with client(broker.port, "dev-a") as a:
            await a.publish(topics.telemetry("dev-a"), b"batch", qos=1)
        assert await received(server, 1) == [(topics.telemetry("dev-a"), b"batch")]


async def test_a_device_writes_only_what_travels_to_the_server(broker: EmbeddedBroker) -> None:
    desired = topics.config_desired("dev-a")
    async with client(broker.port, "server") as server, client(broker.port, "dev-a") as a:
        await server.publish(desired, b"signed by the server", qos=1, retain=True)
        await server.subscribe(f"{topics.ROOT}/dev/dev-a/#", qos=1)
        assert await received(server, 1) == [(desired, b"signed by the server")]
        for topic in (topics.config_desired, topics.cmd, topics.telemetry_ack, topics.sync_down):
            await a.publish(topic("dev-a"), b"forged", qos=1, retain=True)
        await a.publish(topics.telemetry("dev-a"), b"own", qos=1)
        assert await received(server, 5) == [(topics.telemetry("dev-a"), b"own")]
    async with client(broker.port, "dev-a") as a:
        await a.subscribe(desired, qos=1)
        # amqtt may hand a retained message over twice; what counts is whose it is.
        assert set(await received(a, 2)) == {(desired, b"signed by the server")}
