"""What ``simulate`` says of its stations' links, against a real Mosquitto: never that they
run while the broker refuses them or is not there."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from broker import config
from broker.credentials import PasswordFile, reload_broker
from broker.mosquitto_process import free_port
from core.mqtt.endpoint import Endpoint
from core.passwords import mosquitto_hash
from desktop.agent.fleet import Fleet, template
from desktop.agent.fleet_links import FleetLinks
from tests.mqtt.broker import RunningBroker, eventually

NEW = {"late-001": "late-secret-1"}  # registered after the stations started


@asynccontextmanager
async def watched(
    fleet: Fleet, endpoint: Endpoint, **timing: float
) -> AsyncIterator[tuple[list[str], asyncio.Task[bool]]]:
    """The fleet started and watched; the lines said, and the watch (True: stopped by us)."""
    said: list[str] = []
    stop = asyncio.Event()
    await fleet.start()
    watch = asyncio.create_task(
        FleetLinks(fleet.agents, said.append, **timing).watch(endpoint, stop)
    )
    try:
        yield said, watch
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.shield(watch), 5)
        await fleet.stop()


async def test_refused_stations_are_named_then_connect_once_the_broker_knows_them(
    mosquitto: RunningBroker, tmp_path: Path
) -> None:
    endpoint = Endpoint("127.0.0.1", mosquitto.port)
    fleet = Fleet(NEW, template(endpoint, tmp_path, rate_hz=5))
    async with watched(fleet, endpoint, grace_s=30, retry_s=0.2) as (said, watch):
        await eventually(lambda: any("refused by the broker" in line for line in said))
        refused = next(line for line in said if "refused" in line)
        assert refused.startswith(f"0 of 1 stations connected to 127.0.0.1:{mosquitto.port}")
        assert "not authorized (late-001)" in refused
        assert not any("all 1 stations connected" in line for line in said)

        # The account reaches the broker late, as a registration in another process does.
        accounts = PasswordFile(mosquitto.config_file.parent / config.PASSWORD_FILE_NAME)
        accounts.set("late-001", mosquitto_hash(NEW["late-001"]))
        assert mosquitto.pid_file is not None
        reload_broker(mosquitto.pid_file)
        await eventually(lambda: fleet.connected() == 1)
        await eventually(
            lambda: said[-1] == f"all 1 stations connected to {endpoint.host}:{endpoint.port}"
        )
        assert not watch.done()
        assert len([line for line in said if "refused" in line]) == 1  # retries are not news


async def test_stations_refused_past_the_grace_are_left_stopped_and_the_watch_fails(
    mosquitto: RunningBroker, tmp_path: Path
) -> None:
    endpoint = Endpoint("127.0.0.1", mosquitto.port)
    fleet = Fleet(NEW, template(endpoint, tmp_path, rate_hz=5))
    async with watched(fleet, endpoint, grace_s=0.5, retry_s=0.1) as (said, watch):
        assert await asyncio.wait_for(asyncio.shield(watch), 10) is False
        assert "1 left stopped, not authorized (late-001)" in said[-1]
        assert "registered and enabled" in said[-1]


async def test_no_broker_is_said_with_where_and_why(tmp_path: Path) -> None:
    endpoint = Endpoint("127.0.0.1", free_port())  # nobody listens there
    fleet = Fleet(NEW, template(endpoint, tmp_path, rate_hz=5))
    async with watched(fleet, endpoint) as (said, watch):
        where = f"127.0.0.1:{endpoint.port}"
        await eventually(lambda: any("find no broker" in line for line in said))
        line = next(line for line in said if "find no broker" in line)
        assert line.startswith(f"0 of 1 stations connected to {where}")
        assert f"1 find no broker at {where} (" in line and "still trying" in line
        assert "refused" in line.lower()  # the OS's own word: connection refused
        assert not watch.done()
