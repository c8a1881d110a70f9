"""Commands over a real Mosquitto: out when the station is there, answers in, deadlines kept.

A tiny fake station stands in for the real executor: it verifies each command with
``read_cmd_message``, answers ``delivered`` and then its result, answers an id it has seen
(or been asked about) from its cache, answers a query about an id it never saw ``rejected``
(``NOT_RECEIVED``) and refuses that id from then on, and can be told to hold its final
answer, lose it, never get the command at all, or say nothing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import aiomqtt
import pytest
from sqlalchemy import select

from core.db.engine import Database
from core.db.models import AuditEntry, Command
from core.protocol import commands as protocol
from core.protocol import topics
from core.protocol.messages import Status
from core.protocol.signing import VerifyingKey
from core.services import commands, devices
from core.services.actor import Actor
from core.services.commands import deadlines
from core.settings import Settings
from tests.mqtt.broker import DEVICES, RunningBroker, eventually
from tests.mqtt.server import running_backbone
from webui.backbone import commands as dispatch
from webui.backbone.server import Backbone

pytestmark = pytest.mark.backends("one")

ADMIN = Actor(
    name="ada",
    permissions=frozenset({"devices:read", "devices:write", "commands:send", "config:write"}),
)


class FakeStation:
    """A device's command side: verify, answer, run each id once."""

    def __init__(self, broker: RunningBroker, device_id: str, key: VerifyingKey) -> None:
        self.broker, self.device_id, self.key = broker, device_id, key
        self.received: list[protocol.Command | protocol.Refusal] = []
        self.queries: list[protocol.Query | protocol.QueryRefusal] = []
        self.ran: list[str] = []
        self.answers: dict[str, protocol.Result] = {}
        self.release = asyncio.Event()  # cleared: hold the final answer until set
        self.release.set()
        self.silent = False  # say nothing at all
        self.lose_final = False  # run and remember the result, but the answer never leaves
        self.lose_commands = False  # commands never reach it (lost on their way)
        self.lose_answers = False  # runs commands, but none of its answers leaves
        self._client: aiomqtt.Client | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def connected(self, *, announce: bool = True) -> AsyncIterator[FakeStation]:
        """Connected and listening; ``announce``: publish the birth (presence: online)."""
        will = aiomqtt.Will(
            topics.status(self.device_id),
            Status(self.device_id, "offline", "lost").encode(),
            1,
            True,
        )
        async with aiomqtt.Client(
            "127.0.0.1",
            self.broker.port,
            username=self.device_id,
            password=DEVICES[self.device_id],
            will=will,
            # As the station's supervisor does: Nagle would hold each answer ~40 ms.
            socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
        ) as client:
            self._client = client
            await client.subscribe(topics.cmd(self.device_id), qos=2)
            listener = asyncio.create_task(self._listen(client))
            if announce:
                await self.announce()
            try:
                yield self
            finally:
                listener.cancel()
                for task in self._tasks:
                    task.cancel()
                await asyncio.gather(listener, *self._tasks, return_exceptions=True)

    async def announce(self) -> None:
        """Say online (retained), as a station's birth does."""
        assert self._client is not None
        birth = Status(self.device_id, "online", stream=uuid.uuid4().hex)
        await self._client.publish(topics.status(self.device_id), birth.encode(), 1, True)

    async def answer(self, result: protocol.Result) -> None:
        """Publish an answer on this station's own ``cmd/result`` topic."""
        assert self._client is not None
        await self._client.publish(topics.cmd_result(self.device_id), result.encode(), qos=1)

    async def _listen(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            assert isinstance(message.payload, bytes)
            now_ms = int(time.time() * 1000)
            read = protocol.read_cmd_message(
                message.payload, self.device_id, [self.key], now_ms=now_ms
            )
            if isinstance(read, protocol.Query | protocol.QueryRefusal):
                self.queries.append(read)
                if isinstance(read, protocol.Query) and not self.silent:
                    await self._on_query(read)  # in order, as the station's receive loop does
                continue
            if self.lose_commands:
                continue
            self.received.append(read)
            task = asyncio.create_task(self._handle(read))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _on_query(self, query: protocol.Query) -> None:
        """From the cache; an id never seen is refused for good, and said so."""
        if query.cmd_id in self.answers:
            await self.answer(dataclasses.replace(self.answers[query.cmd_id], repeat=True))
        elif query.cmd_id in self.ran:
            delivered = protocol.Result(self.device_id, query.cmd_id, "delivered", repeat=True)
            await self.answer(delivered)
        else:
            never = protocol.Result(self.device_id, query.cmd_id, "rejected", protocol.NOT_RECEIVED)
            self.answers[query.cmd_id] = never
            await self.answer(never)

    async def _handle(self, read: protocol.Command | protocol.Refusal) -> None:
        if self.silent:
            return
        if isinstance(read, protocol.Refusal):
            refusal = protocol.Result(
                self.device_id, read.cmd_id, "rejected", read.detail, claimed_id=read.claimed_id
            )
            await self.answer(refusal)
            return
        if read.cmd_id in self.answers:  # seen before: answered from the cache, never rerun
            await self.answer(self.answers[read.cmd_id])
            return
        if read.cmd_id in self.ran:
            return  # still running: its answer comes when it is done
        self.ran.append(read.cmd_id)
        if not self.lose_answers:
            await self.answer(protocol.Result(self.device_id, read.cmd_id, "delivered"))
        await self.release.wait()
        done = protocol.Result(
            self.device_id, read.cmd_id, "succeeded", f"{read.kind} done", {"args": read.args}
        )
        self.answers[read.cmd_id] = done
        if not (self.lose_final or self.lose_answers):
            await self.answer(done)


@pytest.fixture
async def fleet(database: Database) -> Database:
    async with database.session() as session:
        for device_id in ("press-07", "lathe-1"):
            await devices.create_device(session, actor=ADMIN, device_id=device_id)
    return database


@pytest.fixture
async def backbone(
    settings: Settings, fleet: Database, mosquitto: RunningBroker
) -> AsyncIterator[Backbone]:
    async with running_backbone(settings, fleet, mosquitto) as backbone:
        yield backbone


def _station(backbone: Backbone, broker: RunningBroker, device_id: str) -> FakeStation:
    return FakeStation(broker, device_id, backbone.signing_key.public_key())


async def _create(database: Database, device_id: str, kind: str = "Ping", **kwargs: Any) -> Command:
    kwargs.setdefault("args", {})
    async with database.session() as session:
        return await commands.create(session, actor=ADMIN, device_id=device_id, kind=kind, **kwargs)


async def _get(database: Database, command_id: uuid.UUID) -> Command:
    async with database.session() as session:
        return await commands.get(session, actor=ADMIN, command_id=command_id)


async def _until(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Wait until the async ``check`` holds; fail the test after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 (the database has no event to wait on)
            await asyncio.sleep(0.02)


async def _reaches(database: Database, command_id: uuid.UUID, state: str) -> Command:
    async def reached() -> bool:
        return (await _get(database, command_id)).state == state

    await _until(reached)
    return await _get(database, command_id)


async def _audited(database: Database, action: str) -> list[AuditEntry]:
    async with database.session() as session:
        return list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            )
        )


def _online(backbone: Backbone, device_id: str) -> bool:
    state = backbone.presence.state(device_id)
    return state is not None and state.status == "online"


# -- tests -----------------------------------------------------------------------------------


async def test_commands_wait_for_an_offline_station_and_go_when_it_comes(
    backbone: Backbone, fleet: Database, mosquitto: RunningBroker
) -> None:
    ping = await _create(fleet, "press-07")
    change = await _create(fleet, "press-07", "UpdateConfig", args={"interval_s": 2})
    for waiting in (ping, change):
        stored = await _get(fleet, waiting.id)
        assert (stored.state, stored.attempts) == ("queued", 0)
    station = _station(backbone, mosquitto, "press-07")
    async with station.connected():
        done = await _reaches(fleet, ping.id, "succeeded")
        changed = await _reaches(fleet, change.id, "succeeded")
    assert done.sent_at and done.delivered_at and done.finished_at
    assert (done.detail, done.attempts) == ("Ping done", 1)
    assert changed.result == {"args": {"version": 1, "changes": {"interval_s": 2}}}
    assert sorted(station.ran) == sorted([str(ping.id), str(change.id)])


async def test_a_command_expires_while_its_station_is_offline_and_never_goes(
    backbone: Backbone, fleet: Database, mosquitto: RunningBroker
) -> None:
    station = _station(backbone, mosquitto, "press-07")
    async with station.connected(announce=False):  # listening, but presence says nothing
        command = await _create(fleet, "press-07", timeout_s=1)
        expired = await _reaches(fleet, command.id, "expired")
        await station.announce()
        await eventually(lambda: _online(backbone, "press-07"))
        later = await _create(fleet, "press-07")  # goes at once: the expired one never does
        await _reaches(fleet, later.id, "succeeded")
    assert (expired.attempts, expired.sent_at) == (0, None)
    assert station.ran == [str(later.id)]
    assert [e.target_id for e in await _audited(fleet, "command.expired")] == [str(command.id)]


async def test_an_answer_sent_while_the_server_was_away_ends_the_command(
    settings: Settings, fleet: Database, mosquitto: RunningBroker
) -> None:
    async with running_backbone(settings, fleet, mosquitto) as first:
        station = _station(first, mosquitto, "press-07")
        station.release.clear()
        async with station.connected():
            await eventually(lambda: _online(first, "press-07"))
            command = await _create(fleet, "press-07")
            await _reaches(fleet, command.id, "delivered")
            await first.stop()  # mid-command: the server goes away
            station.release.set()  # the answer waits in the broker for the server's session
            await eventually(lambda: str(command.id) in station.answers)
            async with running_backbone(settings, fleet, mosquitto):
                done = await _reaches(fleet, command.id, "succeeded")
    assert station.ran == [str(command.id)]
    assert done.detail == "Ping done"


async def test_a_lost_answer_is_recovered_by_the_resend_after_a_restart(
    settings: Settings, fleet: Database, mosquitto: RunningBroker
) -> None:
    async with running_backbone(settings, fleet, mosquitto) as first:
        station = _station(first, mosquitto, "press-07")
        station.lose_final = True
        async with station.connected():
            command = await _create(fleet, "press-07")
            await _reaches(fleet, command.id, "delivered")
            await eventually(lambda: str(command.id) in station.answers)
            await first.stop()
            station.lose_final = False
            async with running_backbone(settings, fleet, mosquitto):
                done = await _reaches(fleet, command.id, "succeeded")  # from the cache
    assert station.ran == [str(command.id)]  # sent again, never run again
    assert len(station.received) >= 2
    assert done.attempts >= 2


async def test_forged_answers_are_audited_and_move_nothing(
    backbone: Backbone, fleet: Database, mosquitto: RunningBroker
) -> None:
    theirs = await _create(fleet, "lathe-1")  # queued: lathe-1 is offline
    station = _station(backbone, mosquitto, "press-07")
    async with station.connected():
        for forged in (
            protocol.Result("press-07", None, "rejected", "signature: bad", claimed_id="x"),
            protocol.Result("press-07", str(theirs.id), "succeeded", "not mine"),
            protocol.Result("press-07", str(uuid.uuid4()), "succeeded", "made up"),
        ):
            await station.answer(forged)

        async def all_refused() -> bool:
            return len(await _audited(fleet, "command.refused")) == 3

        await _until(all_refused)
    refusals = await _audited(fleet, "command.refused")
    assert {entry.actor for entry in refusals} == {"device:press-07"}
    reasons = [entry.after["reason"] for entry in refusals if entry.after]
    assert "the command is for device 'lathe-1'" in reasons
    stored = await _get(fleet, theirs.id)
    assert (stored.state, stored.attempts) == ("queued", 0)


async def test_a_station_that_never_answers_holds_up_no_other_station(
    backbone: Backbone, fleet: Database, mosquitto: RunningBroker
) -> None:
    mute = _station(backbone, mosquitto, "press-07")
    mute.silent = True
    quick = _station(backbone, mosquitto, "lathe-1")
    async with mute.connected(), quick.connected():
        await eventually(lambda: _online(backbone, "press-07") and _online(backbone, "lathe-1"))
        stuck = [await _create(fleet, "press-07") for _ in range(5)]
        answered = await _create(fleet, "lathe-1")
        async with asyncio.timeout(2):
            await _reaches(fleet, answered.id, "succeeded")
        for command in stuck:
            assert (await _reaches(fleet, command.id, "sent")).delivered_at is None


async def test_a_failed_publish_is_tried_again_while_the_link_stays_up(
    backbone: Backbone, fleet: Database, mosquitto: RunningBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dispatch, "RETRY_S", 0.05)
    publish = backbone.commands._publish
    failures = [TimeoutError("no PUBCOMP in time")]

    async def flaky(topic: str, payload: bytes) -> None:
        if failures:
            raise failures.pop()
        await publish(topic, payload)

    monkeypatch.setattr(backbone.commands, "_publish", flaky)
    station = _station(backbone, mosquitto, "press-07")
    async with station.connected():
        await eventually(lambda: _online(backbone, "press-07"))
        command = await _create(fleet, "press-07")
        done = await _reaches(fleet, command.id, "succeeded")
    assert (done.attempts, failures) == (2, [])


async def test_a_command_lost_on_its_way_ends_just_past_its_deadline_on_the_stations_word(
    backbone: Backbone, fleet: Database, mosquitto: RunningBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the question it would stay sent for the whole expiry grace (10.5 min)."""
    monkeypatch.setattr(deadlines, "ASK_AFTER", timedelta(milliseconds=100))
    station = _station(backbone, mosquitto, "press-07")
    station.lose_commands = True
    async with station.connected():
        await eventually(lambda: _online(backbone, "press-07"))
        lost = await _create(fleet, "press-07", timeout_s=1)
        await _reaches(fleet, lost.id, "sent")
        ended = await _reaches(fleet, lost.id, "expired")
        assert ended.finished_at is not None
        assert ended.finished_at - ended.expires_at < timedelta(seconds=5)
        assert ended.detail == commands.NEVER_RECEIVED
        assert [q.cmd_id for q in station.queries if isinstance(q, protocol.Query)] == [
            str(lost.id)
        ]
        assert station.ran == []
    [audited] = await _audited(fleet, "command.expired")
    assert audited.actor == "device:press-07"


async def test_a_station_whose_answers_were_lost_answers_the_question_with_its_result(
    backbone: Backbone, fleet: Database, mosquitto: RunningBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deadlines, "ASK_AFTER", timedelta(milliseconds=100))
    station = _station(backbone, mosquitto, "press-07")
    station.lose_answers = True
    async with station.connected():
        await eventually(lambda: _online(backbone, "press-07"))
        ran = await _create(fleet, "press-07", timeout_s=1)
        await eventually(lambda: str(ran.id) in station.answers)
        # The server heard nothing: the command is (or, once mark_sent's commit lands, which
        # the station's lost answer may beat, becomes) sent, and stays so until asked.
        await _reaches(fleet, ran.id, "sent")
        done = await _reaches(fleet, ran.id, "succeeded")
    assert (done.detail, station.ran) == ("Ping done", [str(ran.id)])
    assert done.finished_at is not None and done.finished_at - done.expires_at < timedelta(5)


async def test_a_question_lost_with_the_connection_is_asked_again_when_the_station_returns(
    backbone: Backbone, fleet: Database, mosquitto: RunningBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deadlines, "ASK_AFTER", timedelta(milliseconds=100))
    station = _station(backbone, mosquitto, "press-07")
    station.lose_commands = station.silent = True
    async with station.connected():
        await eventually(lambda: _online(backbone, "press-07"))
        lost = await _create(fleet, "press-07", timeout_s=1)
        await eventually(lambda: len(station.queries) == 1, within=5)
        assert (await _get(fleet, lost.id)).state == "sent"  # asked once, no answer
        station.silent = False
        await station.announce()  # back, as a new instance: asked again
        ended = await _reaches(fleet, lost.id, "expired")
    assert ended.detail == commands.NEVER_RECEIVED and len(station.queries) == 2
