"""A station runs the server's signed commands once each, and answers every one.

Against a real Mosquitto, the test plays the server: it signs commands with a key the
station trusts, publishes them (and forgeries) straight to the broker at QoS 2, hears the
station's answers on ``cmd/result``, and acks telemetry as the server's ingest would.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest

from core.mqtt.endpoint import Endpoint
from core.protocol import topics
from core.protocol.commands import (
    FLUSH_OUTBOX,
    NOT_RECEIVED,
    PING,
    QUERY_LIFE_MS,
    UPDATE_CONFIG,
    Command,
    Query,
    Result,
)
from core.protocol.drops import Drop
from core.protocol.messages import Ack
from core.protocol.signing import SigningKey, generate_signing_key
from core.protocol.station_config import DesiredConfig
from core.protocol.telemetry import parse_batch
from desktop.agent.agent import Agent, AgentConfig
from desktop.agent.command_ledger import INTERRUPTED
from desktop.agent.commands import Outcome
from desktop.agent.outbox import Outbox
from desktop.agent.sources import Simulated
from tests.desktop.commanded import counting, running
from tests.mqtt.broker import DEVICES, SERVER, RunningBroker, eventually

DEVICE = "press-07"
KEY = generate_signing_key()  # the server's signing key, as the station trusts it


def _now_ms() -> int:
    return int(time.time() * 1000)


class Server:
    """The server's side of one station, played by the test."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.answers: list[Result] = []
        self.seqs: set[int] = set()  # telemetry seqs received, live or replayed
        self.ack_once: int | None = None  # ack the contiguous watermark once it reaches this

    async def listen(self) -> None:
        async for message in self.client.messages:
            payload = message.payload
            assert isinstance(payload, bytes)
            if message.topic.matches(topics.cmd_result(DEVICE)):
                answer = Result.parse(payload, DEVICE)
                assert not isinstance(answer, Drop), answer
                self.answers.append(answer)
                continue
            batch = parse_batch(payload, DEVICE)
            assert not isinstance(batch, Drop), batch
            self.seqs.update(sample.seq for sample in batch.samples)
            await self._ack(batch.stream)

    async def _ack(self, stream: str) -> None:
        watermark = 0
        while watermark + 1 in self.seqs:
            watermark += 1
        if self.ack_once is not None and watermark >= self.ack_once:
            ack = Ack(DEVICE, stream, watermark).encode()
            await self.client.publish(topics.telemetry_ack(DEVICE), ack, qos=1)

    async def send(
        self,
        kind: str,
        args: dict[str, Any] | None = None,
        *,
        key: SigningKey = KEY,
        ttl_ms: int = 30_000,
        device_id: str = DEVICE,
        issued_at: int | None = None,
    ) -> tuple[str, bytes]:
        """Sign and publish a command; returns its id and the payload (to publish again)."""
        issued = _now_ms() if issued_at is None else issued_at
        command = Command(str(uuid.uuid4()), device_id, kind, args or {}, issued, issued + ttl_ms)
        payload = command.signed(key)
        await self.publish(payload)
        return command.cmd_id, payload

    async def ask(self, cmd_id: str, cmd_expires_at: int, *, key: SigningKey = KEY) -> None:
        """Ask the station what became of ``cmd_id``, as the server does at its deadline."""
        now = _now_ms()
        query = Query(cmd_id, DEVICE, cmd_expires_at, now, now + QUERY_LIFE_MS)
        await self.publish(query.signed(key))

    async def publish(self, payload: bytes) -> None:
        await self.client.publish(topics.cmd(DEVICE), payload, qos=2)

    async def desire(self, version: int, settings: dict[str, Any], key: SigningKey = KEY) -> None:
        """Publish a desired configuration, retained, as the server does."""
        payload = DesiredConfig(DEVICE, version, settings).signed(key, now_ms=_now_ms())
        await self.client.publish(topics.config_desired(DEVICE), payload, qos=1, retain=True)

    def of(self, cmd_id: str | None, claimed: str = "") -> list[Result]:
        return [a for a in self.answers if a.cmd_id == cmd_id and a.claimed_id == claimed]

    def states(self, cmd_id: str) -> list[str]:
        return [a.state for a in self.of(cmd_id)]

    async def until(self, cmd_id: str, state: str, count: int = 1, within: float = 10) -> Result:
        """The ``count``-th answer ``state`` about ``cmd_id``, once it came."""
        await eventually(lambda: self.states(cmd_id).count(state) >= count, within)
        return [a for a in self.of(cmd_id) if a.state == state][count - 1]


@pytest.fixture
async def server(mosquitto: RunningBroker) -> AsyncIterator[Server]:
    async with aiomqtt.Client(
        "127.0.0.1", mosquitto.port, username=SERVER[0], password=SERVER[1]
    ) as client:
        for topic in (
            topics.cmd_result(DEVICE),
            topics.telemetry(DEVICE),
            topics.telemetry_replay(DEVICE),
        ):
            await client.subscribe(topic, qos=1)
        server = Server(client)
        listening = asyncio.create_task(server.listen())
        try:
            yield server
        finally:
            listening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listening


def _agent(broker: RunningBroker, data_dir: Path, **flags: Any) -> Agent:
    endpoint = Endpoint("127.0.0.1", broker.port, username=DEVICE, password=DEVICES[DEVICE])
    config = AgentConfig(
        DEVICE,
        endpoint,
        data_dir,
        interval_s=3600,  # one sample at start: these tests are about commands
        heartbeat_s=30,
        server_keys=(KEY.public_key(),),
        **flags,
    )
    return Agent(config, [Simulated(seed=5)])


def _said(agent: Agent, text: str) -> bool:
    return any(e.kind == "command" and text in e.text for e in agent.state.events)


async def test_a_ping_is_delivered_then_answered_with_the_station_clock(
    server: Server, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    async with running(_agent(mosquitto, tmp_path)) as agent:
        before = _now_ms()
        cmd_id, _ = await server.send(PING)
        done = await server.until(cmd_id, "succeeded")
        assert server.states(cmd_id) == ["delivered", "succeeded"]
        assert before <= done.result["station_time_ms"] <= _now_ms()
        assert isinstance(done.result["uptime_s"], int) and done.result["uptime_s"] >= 0
        assert done.detail == "answered" and _said(agent, "Ping answered")


async def test_forged_foreign_and_expired_commands_are_refused_and_never_run(
    server: Server, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    async with running(_agent(mosquitto, tmp_path)) as agent:
        runs = counting(agent, PING)
        # Signed with a key the station does not trust: no id it names is believed.
        forged, _ = await server.send(PING, key=generate_signing_key())
        await eventually(lambda: bool(server.of(None, forged)))
        [refused] = server.of(None, forged)
        assert refused.state == "rejected" and "unknown kid" in refused.detail
        # Genuinely signed, for another device, re-wrapped in an envelope naming this one.
        foreign = Command(str(uuid.uuid4()), "lathe-1", PING, {}, _now_ms(), _now_ms() + 30_000)
        envelope = orjson.loads(foreign.signed(KEY))
        await server.publish(orjson.dumps({**envelope, "device_id": DEVICE}))
        rewrapped = await server.until(foreign.cmd_id, "rejected")
        assert "signed for 'lathe-1'" in rewrapped.detail
        # The other device's envelope as it was: refused before any signature is read.
        await server.publish(foreign.signed(KEY))
        await eventually(
            lambda: any("envelope names 'lathe-1'" in a.detail for a in server.of(None))
        )
        # Expired past the signing leeway: its id is genuine, so the refusal names it.
        stale = _now_ms() - 20 * 60_000
        expired, _ = await server.send(PING, issued_at=stale, ttl_ms=60_000)
        assert "expired" in (await server.until(expired, "rejected")).detail
        # Nothing ran, the server heard no other state, and the log says so in words.
        for cmd_id in (forged, foreign.cmd_id, expired):
            assert "delivered" not in server.states(cmd_id)
        assert runs == [] and _said(agent, "refused a command: signature")
        # The station still runs what the server signs.
        fine, _ = await server.send(PING)
        await server.until(fine, "succeeded")
        assert len(runs) == 1


async def test_a_command_delivered_again_is_answered_from_the_ledger_and_runs_once(
    server: Server, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    async with running(_agent(mosquitto, tmp_path)) as agent:
        release = asyncio.Event()
        runs: list[dict[str, Any]] = []

        async def slow_flush(args: dict[str, Any], deadline: float) -> Outcome:
            runs.append(args)
            await release.wait()
            return Outcome("succeeded", "flushed", {"sent": 0})

        agent.commands.handlers[FLUSH_OUTBOX] = slow_flush
        cmd_id, payload = await server.send(FLUSH_OUTBOX)
        await server.until(cmd_id, "delivered")
        # While it runs: a repeat is told it is delivered, and a Ping is not held up.
        await server.publish(payload)
        await server.until(cmd_id, "delivered", count=2)
        ping, _ = await server.send(PING)
        await server.until(ping, "succeeded")
        assert "succeeded" not in server.states(cmd_id) and len(runs) == 1
        release.set()
        done = await server.until(cmd_id, "succeeded")
        # Once done: a repeat gets the same answer again, from the ledger.
        await server.publish(payload)
        again = await server.until(cmd_id, "succeeded", count=2)
        assert (
            (again.detail, again.result) == (done.detail, done.result) == ("flushed", {"sent": 0})
        )
        assert len(runs) == 1 and _said(agent, "answered succeeded from the record")
        # A handler that raises fails its command with the reason; the station goes on.

        async def broken(args: dict[str, Any], deadline: float) -> Outcome:
            raise RuntimeError("the sensor bus is gone")

        agent.commands.handlers[PING] = broken
        failing, _ = await server.send(PING)
        failed = await server.until(failing, "failed")
        assert "the sensor bus is gone" in failed.detail
        assert _said(agent, "Ping failed: the station could not run it")


async def test_a_status_query_is_answered_from_the_ledger_and_runs_nothing(
    server: Server, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    async with running(_agent(mosquitto, tmp_path)) as agent:
        runs = counting(agent, PING)
        # A command the station ran: asked about it, it answers its result again.
        ran, _ = await server.send(PING)
        done = await server.until(ran, "succeeded")
        await server.ask(ran, _now_ms())
        again = await server.until(ran, "succeeded", count=2)
        assert again.repeat and (again.detail, again.result) == (done.detail, done.result)
        assert _said(agent, "Ping asked about: answered succeeded from the record")
        # One it never received: refused from now on, so the server may say it never ran.
        lost = Command(str(uuid.uuid4()), DEVICE, PING, {}, _now_ms(), _now_ms() + 30_000)
        await server.ask(lost.cmd_id, lost.expires_at)
        never = await server.until(lost.cmd_id, "rejected")
        assert (never.detail, never.repeat) == (NOT_RECEIVED, False)
        await server.publish(lost.signed(KEY))  # the command arrives after all
        late = await server.until(lost.cmd_id, "rejected", count=2)
        assert (late.detail, late.repeat) == (NOT_RECEIVED, True)
        assert server.states(lost.cmd_id) == ["rejected", "rejected"]
        assert len(runs) == 1


async def test_a_forged_status_query_changes_nothing(
    server: Server, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    async with running(_agent(mosquitto, tmp_path)) as agent:
        runs = counting(agent, PING)
        command = Command(str(uuid.uuid4()), DEVICE, PING, {}, _now_ms(), _now_ms() + 30_000)
        await server.ask(command.cmd_id, command.expires_at, key=generate_signing_key())
        await eventually(lambda: _said(agent, "ignored a status query: signature"))
        unsigned = orjson.loads(Query(command.cmd_id, DEVICE, command.expires_at, 0, 0).signed(KEY))
        await server.publish(orjson.dumps({**unsigned, "jws": "not.a.token"}))
        await eventually(lambda: _said(agent, "ignored a status query: signature: malformed token"))
        # Neither was answered nor claimed the id: the genuine command still runs.
        await server.publish(command.signed(KEY))
        await server.until(command.cmd_id, "succeeded")
        assert server.states(command.cmd_id) == ["delivered", "succeeded"]
        assert len(runs) == 1 and server.of(None) == []


async def test_the_ledger_survives_a_restart(
    server: Server, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    async with running(_agent(mosquitto, tmp_path)) as agent:
        ran, ran_payload = await server.send(PING)
        first = await server.until(ran, "succeeded")

        async def stuck(args: dict[str, Any], deadline: float) -> Outcome:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        agent.commands.handlers[FLUSH_OUTBOX] = stuck
        cut, cut_payload = await server.send(FLUSH_OUTBOX)
        await server.until(cut, "delivered")
    # Stopped between "delivered" and the result, as a crash would leave it.
    async with running(_agent(mosquitto, tmp_path)) as again:
        pings, flushes = counting(again, PING), counting(again, FLUSH_OUTBOX)
        # On connect, the server hears how the cut command ended, without asking.
        interrupted = await server.until(cut, "failed")
        assert interrupted.detail == INTERRUPTED
        await server.publish(cut_payload)
        assert (await server.until(cut, "failed", count=2)).detail == INTERRUPTED
        await server.publish(ran_payload)
        repeated = await server.until(ran, "succeeded", count=2)
        assert repeated.result == first.result
        assert pings == [] and flushes == []


async def test_update_config_succeeds_when_its_version_is_applied_and_fails_with_the_reason(
    server: Server, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    async with running(_agent(mosquitto, tmp_path)) as agent:
        # The server makes version 1, then publishes it; the command waits for it.
        update = {"version": 1, "changes": {"interval_s": 0.5}}
        cmd_id, _ = await server.send(UPDATE_CONFIG, update)
        await server.until(cmd_id, "delivered")
        await server.desire(1, {"interval_s": 0.5})
        done = await server.until(cmd_id, "succeeded")
        assert (done.detail, done.result) == ("v1 applied", {"version": 1})
        assert agent.state.interval_s == 0.5 and _said(agent, "UpdateConfig v1 applied")
        same, _ = await server.send(UPDATE_CONFIG, update)
        assert (await server.until(same, "succeeded")).detail == "v1 already applied"
        # A version older than the one applied is refused by the station, with its reason.
        await server.desire(2, {"interval_s": 0.25})
        await eventually(lambda: agent.state.config_version == 2)
        await server.desire(1, {"interval_s": 0.5})
        await eventually(lambda: _config_said(agent, "version 1 is older than the applied 2"))
        older, _ = await server.send(UPDATE_CONFIG, update)
        refused = await server.until(older, "failed")
        assert refused.detail == "v1 not applied: version 1 is older than the applied 2"
        # Signed with a key the station does not trust: refused, and the command says why.
        bad = {"version": 3, "changes": {"interval_s": 2}}
        forged, _ = await server.send(UPDATE_CONFIG, bad, ttl_ms=1_500)
        await server.until(forged, "delivered")
        await server.desire(3, {"interval_s": 2}, key=generate_signing_key())
        failed = await server.until(forged, "failed")
        assert failed.detail.startswith("v3 not applied: v3 did not arrive")
        assert "unknown kid" in failed.detail and agent.state.config_version == 2


def _config_said(agent: Agent, text: str) -> bool:
    return any(e.kind == "config" and text in e.text for e in agent.state.events)


BACKLOG = 300


def _backlog(data_dir: Path) -> None:
    """Samples stored while the station was cut off from the server."""
    outbox = Outbox(data_dir / f"{DEVICE}.outbox.db")
    outbox.append([(_now_ms(), {"parts": n}) for n in range(BACKLOG)])
    outbox.close()


async def test_flush_outbox_sends_the_backlog_and_reports_the_acked_seq(
    server: Server, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    _backlog(tmp_path)
    # Paced to 20 samples past the watermark, and the server acks nothing until it has the
    # whole backlog: only a flush, which ignores the pacing, gets the acks going.
    server.ack_once = BACKLOG
    flags = {"replay_ahead": 20, "replay_batch": 10}
    async with running(_agent(mosquitto, tmp_path, **flags)) as agent:
        await eventually(lambda: len(server.seqs) >= 20)
        assert agent.state.acked_seq == 0
        cmd_id, _ = await server.send(FLUSH_OUTBOX)
        done = await server.until(cmd_id, "succeeded")
        last = agent.outbox.next_seq - 1  # the backlog and the sample taken at start
        assert done.result["acked_seq"] == last and done.result["pending"] == 0
        assert BACKLOG - 20 <= done.result["sent"] <= last
        assert server.seqs >= set(range(1, last + 1)) and agent.state.depth == 0
        assert _said(agent, f"FlushOutbox sent {done.result['sent']} samples")


async def test_flush_outbox_fails_when_the_acks_do_not_come_in_time(
    server: Server, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    _backlog(tmp_path)
    async with running(_agent(mosquitto, tmp_path)) as agent:
        cmd_id, _ = await server.send(FLUSH_OUTBOX, ttl_ms=1_000)
        failed = await server.until(cmd_id, "failed")
        last = agent.outbox.next_seq - 1
        assert failed.detail == (
            f"the server acknowledged up to seq 0 of {last} before the command expired"
        )
        assert failed.result["acked_seq"] == 0 and failed.result["pending"] == last
        assert agent.state.depth == last  # nothing left the outbox without the server's ack
