"""Commands end to end: the REST API, the server's dispatcher, Mosquitto and real stations.

PostgreSQL, Mosquitto with our ACL, the whole server in-process (the API through ASGI, the
backbone on the broker) and real desktop agents trusting the server's public key. One
more server-replica account plays the intruder: the ACL lets it publish on any device's
topics, so it can capture real commands and publish forgeries straight to the broker. One
test kills a real ``precisionpulse serve`` process mid-command and starts another.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import orjson
import pytest
from nicegui import app
from sqlalchemy import select

import desktop.agent.commands as station_commands
from broker import config
from broker.credentials import PasswordFile
from broker.mosquitto_process import MosquittoProcess, configure_mosquitto, free_port
from core.db.engine import Database
from core.db.models import AuditEntry
from core.db.models import Command as CommandRow
from core.mqtt.endpoint import Endpoint
from core.passwords import mosquitto_hash
from core.protocol import topics
from core.protocol.commands import (
    FLUSH_OUTBOX,
    PING,
    TERMINAL,
    UPDATE_CONFIG,
    Command,
    read_command,
)
from core.protocol.signing import VerifyingKey, generate_signing_key
from core.services import devices, users
from core.services.actor import Actor
from core.settings import Settings
from desktop.agent.agent import Agent, AgentConfig
from desktop.agent.commands import Outcome
from desktop.agent.sources import Simulated
from tests.desktop.commanded import counting, running
from tests.harness import running_app
from tests.mqtt.broker import DEVICES, SERVER, eventually
from tests.mqtt.server import server_settings
from webui.backbone.server import Backbone, server_signing_key
from webui.services import Services

pytestmark = pytest.mark.production_database

PRESS, LATHE = "press-07", "lathe-1"
ADMIN = ("ada", "ada-password-1")
INTRUDER = ("server-2", "intruder-secret-1")  # a second replica's account: publishes anywhere
START_S = 60  # a server process imports NiceGUI and connects: seconds on a loaded machine
TEN_MINUTES_MS = 10 * 60_000


def _now_ms() -> int:
    return int(time.time() * 1000)


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[MosquittoProcess]:
    """Mosquitto with our ACL, the test devices, the server and a second replica account."""
    broker = configure_mosquitto(tmp_path / "broker", server_usernames=(SERVER[0], INTRUDER[0]))
    accounts = PasswordFile(broker.config_file.parent / config.PASSWORD_FILE_NAME)
    for username, password in {SERVER[0]: SERVER[1], INTRUDER[0]: INTRUDER[1], **DEVICES}.items():
        accounts.set(username, mosquitto_hash(password))
    await broker.start()
    yield broker
    await broker.stop()


@dataclass(frozen=True)
class Api:
    """The REST API as an admin calls it."""

    client: httpx.AsyncClient
    headers: dict[str, str]

    @classmethod
    async def signed_in(cls, client: httpx.AsyncClient) -> Api:
        login = await client.post(
            "/api/v1/auth/login", json={"username": ADMIN[0], "password": ADMIN[1]}
        )
        assert login.status_code == 200, login.text
        return cls(client, {"Authorization": f"Bearer {login.json()['access_token']}"})

    async def send(
        self, device_id: str, kind: str, args: dict[str, Any] | None = None, timeout_s: int = 30
    ) -> dict[str, Any]:
        body = {"kind": kind, "args": args or {}, "timeout_s": timeout_s}
        response = await self.client.post(
            f"/api/v1/devices/{device_id}/commands", json=body, headers=self.headers
        )
        assert response.status_code == 201, response.text
        made: dict[str, Any] = response.json()
        return made

    async def get(self, path: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1{path}", headers=self.headers)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    async def until(self, cmd_id: str, *states: str, within: float = 15) -> dict[str, Any]:
        """The command once its state is one of ``states`` (polled through the API)."""
        command = await self.get(f"/commands/{cmd_id}")
        try:
            async with asyncio.timeout(within):
                while command["state"] not in states:
                    await asyncio.sleep(0.02)
                    command = await self.get(f"/commands/{cmd_id}")
        except TimeoutError:
            pytest.fail(f"command still {command['state']} after {within} s, not {states}")
        return command


@dataclass(frozen=True)
class InProcess:
    """The whole server in-process: its API and its backbone."""

    api: Api
    backbone: Backbone


async def _prepare(database: Database, *device_ids: str) -> None:
    """An Admin, and the devices registered as the API registers them."""
    async with database.session() as session:
        await users.bootstrap_user(session, username=ADMIN[0], password=ADMIN[1], roles=["Admin"])
        registrar = Actor(name=ADMIN[0], permissions=frozenset({"devices:write"}))
        for device_id in device_ids:  # the broker knows their passwords (DEVICES)
            await devices.create_device(session, actor=registrar, device_id=device_id)


@pytest.fixture
async def server(
    settings: Settings, database: Database, broker: MosquittoProcess
) -> AsyncIterator[InProcess]:
    """Two registered devices, an Admin, and the server running on the broker."""
    await _prepare(database, PRESS, LATHE)
    async with running_app(server_settings(settings, broker)) as client:
        services: Services = app.state.services
        assert services.backbone.supervisor is not None
        async with asyncio.timeout(10):
            await services.backbone.supervisor.wait_connected()
        yield InProcess(await Api.signed_in(client), services.backbone)


def _station(
    broker: MosquittoProcess,
    data_dir: Path,
    device_id: str,
    key: VerifyingKey,
    *,
    interval_s: float = 3600,  # one sample at start: these tests are about commands
) -> Agent:
    endpoint = Endpoint("127.0.0.1", broker.port, username=device_id, password=DEVICES[device_id])
    config = AgentConfig(
        device_id,
        endpoint,
        data_dir,
        interval_s=interval_s,
        heartbeat_s=30,
        server_keys=(key,),
    )
    return Agent(config, [Simulated(seed=7)])


def _said(agent: Agent, text: str) -> int:
    return sum(1 for e in agent.state.events if e.kind == "command" and text in e.text)


def _rejected(agent: Agent, cmd_id: str) -> bool:
    """Whether the station's ledger keeps ``cmd_id`` as refused (so it never runs)."""
    entry = agent.ledger.get(cmd_id)
    return entry is not None and entry.state == "rejected"


def _times(command: dict[str, Any]) -> list[datetime]:
    names = ("created_at", "sent_at", "delivered_at", "finished_at")
    return [datetime.fromisoformat(command[name]) for name in names]


async def _audited(database: Database, *actions: str) -> list[AuditEntry]:
    async with database.session() as session:
        query = select(AuditEntry).where(AuditEntry.action.in_(actions)).order_by(AuditEntry.id)
        return list(await session.scalars(query))


async def _audit_until(
    database: Database, count: int, *actions: str, within: float = 10
) -> list[AuditEntry]:
    """The entries of ``actions`` once there are ``count`` of them."""
    async with asyncio.timeout(within):
        while len(entries := await _audited(database, *actions)) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    return entries


async def test_a_command_to_an_offline_station_waits_and_runs_once_it_connects(
    server: InProcess, broker: MosquittoProcess, tmp_path: Path
) -> None:
    api, key = server.api, server.backbone.signing_key.public_key()
    queued = await api.send(PRESS, PING)
    assert (queued["state"], queued["attempts"], queued["sent_at"]) == ("queued", 0, None)
    agent = _station(broker, tmp_path, PRESS, key)
    runs = counting(agent, PING)
    started = datetime.now(UTC)
    async with running(agent):
        done = await api.until(queued["id"], *TERMINAL)
    assert (done["state"], done["detail"], done["attempts"]) == ("succeeded", "answered", 1)
    assert len(runs) == 1
    created, sent, _, finished = times = _times(done)
    assert times == sorted(times)
    assert sent >= started > created  # it waited, queued, for the station to come
    station_ms = done["result"]["station_time_ms"]  # the station's clock, when it ran
    assert int(started.timestamp() * 1000) <= station_ms <= finished.timestamp() * 1000
    assert done["result"]["uptime_s"] >= 0


async def test_a_command_past_its_deadline_ends_expired_and_never_runs(
    server: InProcess, database: Database, broker: MosquittoProcess, tmp_path: Path
) -> None:
    api, key = server.api, server.backbone.signing_key.public_key()
    doomed = await api.send(PRESS, PING, timeout_s=1)
    expired = await api.until(doomed["id"], *TERMINAL, within=10)
    assert (expired["state"], expired["attempts"], expired["sent_at"]) == ("expired", 0, None)
    assert expired["detail"] == "not delivered before its deadline"
    agent = _station(broker, tmp_path, PRESS, key)
    runs = counting(agent, PING)
    async with running(agent):
        later = await api.send(PRESS, PING)  # sent after the station's pending ones, if any
        assert (await api.until(later["id"], *TERMINAL))["state"] == "succeeded"
        assert agent.ledger.get(doomed["id"]) is None  # it never reached the station
    assert len(runs) == 1
    assert (await api.get(f"/commands/{doomed['id']}"))["state"] == "expired"
    [entry] = [e for e in await _audited(database, "command.expired")]
    assert (entry.actor, entry.target_id) == ("system", doomed["id"])


async def test_forged_foreign_expired_and_replayed_commands_are_refused_unrun_and_audited(
    server: InProcess,
    database: Database,
    broker: MosquittoProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api, signing_key = server.api, server.backbone.signing_key
    key = signing_key.public_key()
    press = _station(broker, tmp_path, PRESS, key)
    runs = counting(press, PING)
    async with (
        running(press),
        running(_station(broker, tmp_path, LATHE, key)),
        _intruder(broker, key) as intruder,
    ):
        # Two real commands, captured on the wire as the server sent them.
        ours, theirs = await api.send(PRESS, PING), await api.send(LATHE, PING)
        for command in (ours, theirs):
            assert (await api.until(command["id"], *TERMINAL))["state"] == "succeeded"
        ours_payload = intruder.captured(ours["id"])
        theirs_payload = intruder.captured(theirs["id"])
        # Forged: signed with a key the station does not trust.
        now = _now_ms()
        forged = Command(str(uuid.uuid4()), PRESS, PING, {}, now, now + 30_000)
        await intruder.publish(PRESS, forged.signed(generate_signing_key()))
        # Another device's real command: as it was, and re-wrapped in an envelope naming press.
        await intruder.publish(PRESS, theirs_payload)
        envelope = orjson.loads(theirs_payload)
        await intruder.publish(PRESS, orjson.dumps({**envelope, "device_id": PRESS}))
        # Expired (well past the signing leeway), under the server's own signature.
        stale = Command(str(uuid.uuid4()), PRESS, PING, {}, now - 20 * 60_000, now - 19 * 60_000)
        await intruder.publish(PRESS, stale.signed(signing_key))
        refused = await _audit_until(database, 4, "command.refused")
        assert press.ledger.get(forged.cmd_id) is None  # unverified: nothing of it is kept
        assert _rejected(press, theirs["id"]) and _rejected(press, stale.cmd_id)
        # Replayed: our real, already-run command published again ten minutes later (on the
        # station's clock), when its signature has expired.
        monkeypatch.setattr(station_commands, "_now_ms", lambda: _now_ms() + TEN_MINUTES_MS)
        await intruder.publish(PRESS, ours_payload)
        [late] = await _audit_until(database, 1, "command.late_result")
        assert _rejected(press, ours["id"])
    assert len(runs) == 1  # our real Ping, once; nothing the intruder sent ever ran
    assert _said(press, "refused a command") == 5
    by_target = {entry.target_id: entry.after or {} for entry in refused}
    assert all(entry.actor == f"device:{PRESS}" for entry in [*refused, late])
    assert by_target[forged.cmd_id]["reason"] == "the station could not verify a command"
    assert "signature" in by_target[forged.cmd_id]["detail"]
    assert "envelope names 'lathe-1'" in by_target[""]["detail"]  # no id the station believed
    assert by_target[theirs["id"]]["reason"] == "the command is for device 'lathe-1'"
    assert "signed for 'lathe-1'" in by_target[theirs["id"]]["detail"]
    assert by_target[stale.cmd_id]["reason"] == "no such command"
    assert "expired" in by_target[stale.cmd_id]["detail"]
    assert late.target_id == ours["id"] and late.before == {
        "state": "succeeded",
        "detail": "answered",
    }
    assert (late.after or {})["state"] == "rejected" and "expired" in (late.after or {})["detail"]
    # Nothing the intruder did moved a real command.
    for command in (ours, theirs):
        assert (await api.get(f"/commands/{command['id']}"))["state"] == "succeeded"


async def test_a_duplicate_delivery_runs_once_and_changes_nothing(
    server: InProcess, database: Database, broker: MosquittoProcess, tmp_path: Path
) -> None:
    api, key = server.api, server.backbone.signing_key.public_key()
    agent = _station(broker, tmp_path, PRESS, key)
    runs = counting(agent, PING)
    async with running(agent), _intruder(broker, key) as intruder:
        command = await api.send(PRESS, PING)
        done = await api.until(command["id"], *TERMINAL)
        await intruder.publish(PRESS, intruder.captured(command["id"]))  # the same bytes again
        await eventually(lambda: _said(agent, "delivered again: answered succeeded") == 1)
        await _audit_until(database, 1, "command.replayed")
        again = await api.get(f"/commands/{command['id']}")
    assert len(runs) == 1 and done["state"] == "succeeded"
    assert again == done  # the repeated answer moved nothing, not even a time
    ended = await _audited(database, "command.succeeded", "command.late_result", "command.replayed")
    # The server never re-sends an ended command: a delivery answered as a repeat is a replay.
    assert [(e.action, e.target_id) for e in ended] == [
        ("command.succeeded", command["id"]),
        ("command.replayed", command["id"]),
    ]


async def test_update_config_through_the_api_is_applied_and_reported(
    server: InProcess, broker: MosquittoProcess, tmp_path: Path
) -> None:
    api, key = server.api, server.backbone.signing_key.public_key()
    agent = _station(broker, tmp_path, PRESS, key)
    async with running(agent):
        command = await api.send(PRESS, UPDATE_CONFIG, {"interval_s": 0.5, "units": {"t": "°C"}})
        version = command["config_version"]
        assert version >= 1
        done = await api.until(command["id"], *TERMINAL)
        assert (done["state"], done["result"]) == ("succeeded", {"version": version})
        # The retained desired configuration may reach the station before the command does.
        assert done["detail"] in (f"v{version} applied", f"v{version} already applied")
        assert (agent.state.config_version, agent.state.interval_s) == (version, 0.5)
        config = await api.get(f"/devices/{PRESS}/config")
        async with asyncio.timeout(10):  # the report comes on its own topic, maybe later
            while config["reported_version"] < version:
                await asyncio.sleep(0.02)
                config = await api.get(f"/devices/{PRESS}/config")
    assert config["reported_version"] == version and config["drift"] is None
    assert config["reported"]["interval_s"] == 0.5


# -- the intruder ----------------------------------------------------------------------


class Intruder:
    """A client of a second server account: it reads every command, publishes anything."""

    def __init__(self, client: aiomqtt.Client, key: VerifyingKey) -> None:
        self.client, self.key = client, key
        self.seen: list[tuple[str, bytes]] = []  # (device, payload) of each command on the wire

    async def listen(self) -> None:
        async for message in self.client.messages:
            assert isinstance(message.payload, bytes)
            parsed = topics.parse(str(message.topic))
            assert parsed is not None and parsed.device_id is not None
            self.seen.append((parsed.device_id, message.payload))

    def captured(self, cmd_id: str) -> bytes:
        """The signed payload of ``cmd_id`` as the server published it."""
        for device_id, payload in self.seen:
            read = read_command(payload, device_id, [self.key], now_ms=_now_ms())
            if isinstance(read, Command) and read.cmd_id == cmd_id:
                return payload
        pytest.fail(f"command {cmd_id} was not seen on the wire")

    async def publish(self, device_id: str, payload: bytes) -> None:
        await self.client.publish(topics.cmd(device_id), payload, qos=2)


@contextlib.asynccontextmanager
async def _intruder(broker: MosquittoProcess, key: VerifyingKey) -> AsyncIterator[Intruder]:
    async with aiomqtt.Client(
        "127.0.0.1", broker.port, username=INTRUDER[0], password=INTRUDER[1]
    ) as client:
        for device_id in (PRESS, LATHE):
            await client.subscribe(topics.cmd(device_id), qos=2)
        intruder = Intruder(client, key)
        listening = asyncio.get_running_loop().create_task(intruder.listen())
        try:
            yield intruder
        finally:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening


# -- a server killed mid-command -------------------------------------------------------


async def _serve(settings: Settings, broker: MosquittoProcess, tmp_path: Path) -> tuple[Any, str]:
    """``precisionpulse serve`` on the test database and broker, once its link is up."""
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PP_") and k != "PYTEST_CURRENT_TEST"
    }
    env |= {
        "PP_DATABASE_URL": settings.database_url,
        "PP_MQTT_URL": f"mqtt://127.0.0.1:{broker.port}",
        "PP_MQTT_USERNAME": SERVER[0],
        "PP_MQTT_PASSWORD": SERVER[1],
        "PP_MQTT_CLIENT_ID": SERVER[0],
        # The test's keys: the same signing key (stations trust it) and audit key.
        "PP_SIGNING_KEY_FILE": str(settings.signing_key_file),
        "NICEGUI_STORAGE_PATH": str(tmp_path / ".nicegui"),
    }
    with (tmp_path / "server.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "core.cli", "serve", "--port", str(port),
            env=env, stdout=log, stderr=log,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def linked() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/api/v1/health", timeout=1) as answer:
                return bool(orjson.loads(answer.read())["broker"]["state"] == "connected")
        except OSError:
            return False

    async with asyncio.timeout(START_S):
        while not await asyncio.to_thread(linked):
            assert process.returncode is None, (tmp_path / "server.log").read_text()
            await asyncio.sleep(0.1)
    return process, url


async def test_a_server_killed_mid_command_ends_it_truthfully_once_restarted(
    settings: Settings, database: Database, broker: MosquittoProcess, tmp_path: Path
) -> None:
    await _prepare(database, PRESS)
    key = server_signing_key(settings.signing_key_file)  # what each server process loads
    agent = _station(broker, tmp_path, PRESS, key.public_key(), interval_s=0.1)
    flush, release, runs = agent.commands.handlers[FLUSH_OUTBOX], asyncio.Event(), []

    async def held(args: dict[str, Any], deadline: float) -> Outcome:
        """The real flush, once the test lets it start (the server is dead by then)."""
        runs.append(args)
        await release.wait()
        return await flush(args, deadline)

    agent.commands.handlers[FLUSH_OUTBOX] = held
    process, url = await _serve(settings, broker, tmp_path)
    try:
        async with running(agent):
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                api = await Api.signed_in(client)
                cmd_id = (await api.send(PRESS, FLUSH_OUTBOX, timeout_s=60))["id"]
                await api.until(cmd_id, "delivered")
            process.kill()  # no farewell, no drain: as a crash
            await process.wait()
            # Samples taken while no server runs: the flush needs the next server's acks.
            dead_at = agent.state.last_seq
            await eventually(lambda: agent.state.last_seq >= dead_at + 3)
            release.set()
            async with database.session() as session:
                row = await session.get(CommandRow, uuid.UUID(cmd_id))
                assert row is not None and row.state == "delivered"  # nobody guessed meanwhile
            process, url = await _serve(settings, broker, tmp_path)
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                api = await Api.signed_in(client)
                done = await api.until(cmd_id, *TERMINAL, within=30)
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
    assert done["state"] == "succeeded", done
    assert len(runs) == 1
    assert done["result"]["acked_seq"] >= dead_at + 3 and done["result"]["sent"] >= 3
    assert _times(done) == sorted(_times(done))
    ended = await _audited(database, "command.succeeded", "command.late_result")
    assert [(e.action, e.target_id) for e in ended] == [("command.succeeded", cmd_id)]
