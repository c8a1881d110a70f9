"""MosquittoProcess: crashes, restarts on the same port, persistence, clear start errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from broker.mosquitto_process import BrokerStartError, MosquittoProcess
from core.protocol import topics
from tests.broker.conftest import LocalBroker, can_connect, client, needs_mosquitto, received

pytestmark = needs_mosquitto


def listens(port: int) -> bool:
    """Whether anything accepts TCP on ``port`` (a dead broker refuses outright)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


async def test_a_client_reconnects_after_a_kill_and_restart(local_broker: LocalBroker) -> None:
    process = local_broker.process
    port = process.port
    await process.kill()
    assert not process.running
    assert not listens(port)
    await process.start()
    assert process.port == port
    assert await can_connect(port, "dev-a")


async def test_retained_messages_survive_a_clean_restart(local_broker: LocalBroker) -> None:
    async with client(local_broker.port, "server") as server:
        await server.publish(topics.SERVER_STATUS, b"online", qos=1, retain=True)
    await local_broker.process.restart()  # SIGTERM saves the persistence file
    async with client(local_broker.port, "dev-a") as a:
        await a.subscribe(topics.SERVER_STATUS, qos=1)
        assert await received(a, 1) == [(topics.SERVER_STATUS, b"online")]


async def test_a_broker_that_dies_on_start_is_reported_with_its_output(tmp_path: Path) -> None:
    conf = tmp_path / "mosquitto.conf"
    conf.write_text("listener 1 127.0.0.1\nno_such_option true\n")
    process = MosquittoProcess(conf, port=1)
    with pytest.raises(BrokerStartError, match=r"(?s)exited with code.*no_such_option"):
        await process.start()
    assert not process.running


async def test_a_taken_port_is_refused(local_broker: LocalBroker, tmp_path: Path) -> None:
    other = MosquittoProcess(tmp_path / "unused.conf", port=local_broker.port)
    with pytest.raises(BrokerStartError, match="taken by another process"):
        await other.start()
