"""max_inflight_messages against a real Mosquitto: a live sample goes ahead of replayed ones
waiting for a server that has fallen behind, and a client's full window of QoS 2 messages
is never dropped (issue 15)."""

from __future__ import annotations

import asyncio

from broker import config
from core.mqtt.link import Options
from core.protocol import topics
from core.settings import Settings
from tests.broker.conftest import LocalBroker, client, needs_mosquitto, received

pytestmark = needs_mosquitto
BEHIND = 20  # replay messages past the broker's in-flight limit, left waiting


def test_the_broker_takes_every_client_window_in_flight() -> None:
    """Below a client's window, its QoS 2 messages past the broker's limit are dropped."""
    windows = (Options(client_id="x").inflight_window, Settings().mqtt_inflight_window)
    assert max(windows) <= config.MAX_INFLIGHT_MESSAGES


async def test_a_live_message_goes_ahead_of_replay_waiting_for_a_server_behind(
    local_broker: LocalBroker,
) -> None:
    server = client(local_broker.port, "server")
    server._client.manual_ack_set(True)  # a server that has fallen behind: it acks nothing
    async with server, client(local_broker.port, "dev-a") as device:
        await server.subscribe("pp/v1/dev/+/telemetry/#", qos=1)
        for n in range(config.MAX_INFLIGHT_MESSAGES + BEHIND):
            await device.publish(topics.telemetry_replay("dev-a"), b"replay %d" % n, qos=1)
        await device.publish(topics.telemetry("dev-a"), b"live", qos=0)
        got = [payload for _, payload in await received(server, 1_000)]
    # The limit's worth of replay went out, unacknowledged; the rest wait; live went ahead.
    assert got[-1] == b"live" and len(got) == config.MAX_INFLIGHT_MESSAGES + 1


async def test_a_client_window_of_qos2_messages_all_arrive(local_broker: LocalBroker) -> None:
    window = Options(client_id="x").inflight_window
    sender = client(local_broker.port, "server")
    sender._client.max_inflight_messages_set(window)  # as the supervisor sets it
    count = 3 * window
    async with sender, client(local_broker.port, "dev-a") as device:
        await device.subscribe(topics.cmd("dev-a"), qos=2)
        await asyncio.gather(
            *(sender.publish(topics.cmd("dev-a"), b"%d" % n, qos=2) for n in range(count))
        )
        got = await received(device, count)
    assert len(got) == count
