"""A client's id is its username: no account can knock another's session off the broker.

Run with Mosquitto's own command-line clients against Mosquitto started from our config.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import pytest

from core.protocol import topics
from tests.broker.conftest import PASSWORD, TIMEOUT, LocalBroker, client, needs_mosquitto

pytestmark = [
    needs_mosquitto,
    pytest.mark.skipif(shutil.which("mosquitto_sub") is None, reason="needs mosquitto-clients"),
    pytest.mark.skipif(shutil.which("stdbuf") is None, reason="needs stdbuf (coreutils)"),
]


async def _line(process: asyncio.subprocess.Process, wanted: str) -> list[str]:
    """The output lines up to and including the first that contains ``wanted``."""
    assert process.stdout is not None
    lines: list[str] = []
    async with asyncio.timeout(TIMEOUT):
        while not lines or wanted not in lines[-1]:
            line = await process.stdout.readline()
            assert line, f"mosquitto_sub ended before {wanted!r}: {lines}"
            lines.append(line.decode().rstrip())
    return lines


@pytest.mark.parametrize(
    ("victim", "victim_id"),
    [
        ("dev-b", "dev-b"),  # the id a station now asks for: its device id
        ("dev-b", "pp-station-dev-b"),  # the id stations used to ask for
        ("server", "server"),
        ("server", "pp-server"),
    ],
)
async def test_a_device_claiming_another_clients_id_does_not_disconnect_it(
    local_broker: LocalBroker, victim: str, victim_id: str
) -> None:
    port = str(local_broker.port)
    # -d prints the protocol: one CONNACK means the victim was never disconnected (it would
    # reconnect by itself); -C 1 ends it after the first message. stdbuf: line by line.
    sub = await asyncio.create_subprocess_exec(
        *(
            "stdbuf",
            "-oL",
            "mosquitto_sub",
            "-d",
            "-h",
            "127.0.0.1",
            "-p",
            port,
            "-u",
            victim,
            "-P",
            PASSWORD,
        ),
        *("-i", victim_id, "-q", "1", "-C", "1", "-t", topics.cmd("dev-b")),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        before = await _line(sub, "received SUBACK")

        pub = ["mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-u", "dev-a", "-P", PASSWORD]
        pub += ["-i", victim_id, "-q", "1", "-t", topics.telemetry("dev-a"), "-m", "hello"]
        hijack = await asyncio.to_thread(
            subprocess.run,
            pub,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert hijack.returncode == 0, hijack.stderr  # A itself is welcome, as dev-a

        async with client(local_broker.port, "server-2") as server:
            await server.publish(topics.cmd("dev-b"), b"still there?", qos=1)
        after = await _line(sub, "still there?")
        assert await asyncio.wait_for(sub.wait(), TIMEOUT) == 0
    finally:
        if sub.returncode is None:
            sub.kill()
            await sub.wait()

    said = before + after
    assert sum("received CONNACK" in line for line in said) == 1, said
    assert "already connected" not in local_broker.process.output()


async def test_the_session_follows_the_account_whatever_id_it_asks_for(
    local_broker: LocalBroker,
) -> None:
    """A persistent session (QoS 1 queued while away) is the username's, not the id's."""
    port = str(local_broker.port)
    common = ["-h", "127.0.0.1", "-p", port, "-u", "dev-b", "-P", PASSWORD, "-q", "1", "-c"]
    first = await asyncio.to_thread(
        subprocess.run,
        ["mosquitto_sub", *common, "-i", "first-id", "-t", topics.cmd("dev-b"), "-W", "1"],
        capture_output=True,
        timeout=TIMEOUT,
    )
    assert first.returncode == 27, first.stderr  # timed out waiting: subscribed, then left
    async with client(local_broker.port, "server") as server:
        await server.publish(topics.cmd("dev-b"), b"queued while away", qos=1)

    sub = ["mosquitto_sub", *common, "-i", "other-id", "-t", topics.cmd("dev-b"), "-C", "1"]
    again = await asyncio.to_thread(
        subprocess.run,
        [*sub, "-W", str(int(TIMEOUT))],
        capture_output=True,
        text=True,
        timeout=TIMEOUT + 1,
    )
    assert again.stdout == "queued while away\n", again.stderr
