"""The station's command executor: verify, answer at once, run each command apart, answer again.

A ``cmd`` message (QoS 2) is verified against the server's keys (``read_command``). A
refusal (bad signature, another device's, expired, bad arguments, a kind this station has
no handler for) is answered ``rejected`` at once and never runs; without a signature that
holds, the answer carries ``cmd_id: null`` and the id the message claimed. An accepted
command is claimed in the ledger first (so no id ever runs twice, a restart included), then
answered ``delivered`` and run in a task of its own, so a slow one never holds up the next;
its handler's outcome is kept in the ledger and answered ``succeeded`` or ``failed`` with
its result data. A second delivery of an id is answered from the ledger (``delivered``
while it still runs) and never runs. An answer the link could not carry is sent again on
the next connect. Each command is told in the station's log, in words.

A verified status query (``command.query``, the server asking about a command at its
deadline) is answered from the ledger as a second delivery would be (``delivered`` while it
runs, else the final answer, marked ``repeat``). An id the ledger does not hold is claimed
there as ``rejected`` (``NOT_RECEIVED``) and answered so: the command is then refused should
it still arrive, since the server was told it never ran. A query never runs anything; one
that does not verify is noted in the log and changes nothing.

Handlers are a table, kind -> ``async (args, deadline) -> Outcome`` (``command_handlers``);
a handler that raises fails its command with the reason and never stops the station.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from core.mqtt.link import LinkEvent, LinkState
from core.mqtt.routing import Route
from core.protocol import topics
from core.protocol.commands import (
    MIN_RUN_S,
    NOT_RECEIVED,
    Command,
    Query,
    QueryRefusal,
    Refusal,
    Result,
    StationState,
    read_cmd_message,
)
from core.tasks import TaskSet
from desktop.agent.command_ledger import CommandLedger, Entry
from desktop.agent.station import Station

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """How a command ended on the station: the state, a detail a person reads, result data."""

    state: Literal["succeeded", "failed"]
    detail: str
    result: dict[str, Any] = field(default_factory=dict)


# The command's checked arguments and its deadline (the event loop's clock) -> its outcome.
Handler = Callable[[dict[str, Any], float], Awaitable[Outcome]]


def _now_ms() -> int:
    return int(time.time() * 1000)


class CommandExecutor:
    """Runs the server's signed commands once each, and answers every one of them."""

    def __init__(
        self, station: Station, ledger: CommandLedger, handlers: Mapping[str, Handler]
    ) -> None:
        self._station = station
        self._ledger = ledger
        self.handlers: dict[str, Handler] = dict(handlers)  # kind -> handler
        self._running: set[str] = set()  # ids whose handler runs in this process
        self._tasks = TaskSet(f"commands of {station.config.device_id}")
        self._link_up = asyncio.Event()  # a connect: answers left unsent go out again

    # -- as a part of the station -------------------------------------------------------

    def routes(self) -> Sequence[Route[Any]]:
        """The server's signed commands, at QoS 2."""
        d = self._station.config.device_id
        return [Route(topics.cmd(d), 2, self._decode, self.on_command)]

    def loops(self) -> Sequence[Callable[[], Coroutine[Any, Any, None]]]:
        """The loop that sends, on each connect, the answers the link could not carry."""
        return [self._report_forever]

    async def stop(self) -> None:
        """Cancel the commands still running: their ids are answered failed after a restart."""
        await self._tasks.cancel()

    def on_link(self, event: LinkEvent) -> None:
        """On a connect, send again what the server has not been told."""
        if event.state is LinkState.CONNECTED:
            self._link_up.set()

    # -- receiving ----------------------------------------------------------------------

    def _decode(
        self, topic: topics.ParsedTopic, payload: bytes
    ) -> Command | Refusal | Query | QueryRefusal:
        config = self._station.config
        return read_cmd_message(payload, config.device_id, config.server_keys, now_ms=_now_ms())

    async def on_command(self, command: Command | Refusal | Query | QueryRefusal) -> None:
        """Claim and start a verified command, answer a refusal, a repeat or a query.

        Runs in the link's receive loop: only the ledger's claim is awaited here, so a
        query is answered after every command that came before it.
        """
        if isinstance(command, Query | QueryRefusal):
            await self._on_query(command)
            return
        if isinstance(command, Command) and command.kind not in self.handlers:
            detail = f"this station cannot run {command.kind}"
            command = Refusal(detail, command.cmd_id, command.cmd_id, command.expires_at)
        if isinstance(command, Refusal):
            await self._refuse(command)
            return
        seen = await asyncio.to_thread(
            self._ledger.claim, command.cmd_id, command.kind, command.expires_at, now_ms=_now_ms()
        )
        if seen is not None:
            self._tasks.spawn(self._repeat(seen), name=f"repeat {command.cmd_id}")
            return
        self._running.add(command.cmd_id)
        self._tasks.spawn(self._run(command), name=f"{command.kind} {command.cmd_id}")

    async def _refuse(self, refusal: Refusal) -> None:
        events = self._station.events
        if refusal.cmd_id is None:  # unverified: nothing to keep, nothing it names is trusted
            events.record("command", f"refused a command: {refusal.detail}")
            answer = self._result(None, "rejected", refusal.detail, claimed_id=refusal.claimed_id)
            self._tasks.spawn(self._send(answer), name="refusal")
            return
        cmd_id = refusal.cmd_id
        seen = await asyncio.to_thread(
            self._ledger.claim,
            cmd_id,
            "",
            refusal.expires_at,
            now_ms=_now_ms(),
            state="rejected",
            detail=refusal.detail,
        )
        if seen is not None:
            self._tasks.spawn(self._repeat(seen), name=f"repeat {cmd_id}")
            return
        events.record("command", f"refused a command: {refusal.detail}")
        self._tasks.spawn(self._final(self._result(cmd_id, "rejected", refusal.detail)))

    async def _on_query(self, query: Query | QueryRefusal) -> None:
        """What became of a command: the ledger's word, or never received (claimed refused)."""
        if isinstance(query, QueryRefusal):  # forged or stale: nothing it names is trusted
            self._station.events.record("command", f"ignored a status query: {query.detail}")
            return
        seen = await asyncio.to_thread(
            self._ledger.claim,
            query.cmd_id,
            "",
            query.cmd_expires_at,
            now_ms=_now_ms(),
            state="rejected",
            detail=NOT_RECEIVED,
        )
        if seen is not None:
            self._tasks.spawn(self._repeat(seen, "asked about"), name=f"query {query.cmd_id}")
            return
        self._station.events.record("command", f"asked about a command: {NOT_RECEIVED}")
        answer = self._result(query.cmd_id, "rejected", NOT_RECEIVED)
        self._tasks.spawn(self._final(answer), name=f"query {query.cmd_id}")

    # -- running ------------------------------------------------------------------------

    async def _run(self, command: Command) -> None:
        """Answer delivered, run the handler, keep and answer its outcome."""
        cmd_id, kind = command.cmd_id, command.kind
        await self._send(self._result(cmd_id, "delivered"))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(MIN_RUN_S, (command.expires_at - _now_ms()) / 1000)
        try:
            outcome = await self.handlers[kind](command.args, deadline)
        except TimeoutError:
            outcome = Outcome("failed", "did not finish before the command expired")
        except Exception as error:  # a handler's bug fails its command, never the station
            log.exception("%s command %s failed", kind, cmd_id)
            outcome = Outcome("failed", f"the station could not run it: {error or type(error)}")
        await asyncio.to_thread(
            self._ledger.finish, cmd_id, outcome.state, outcome.detail, outcome.result
        )
        self._running.discard(cmd_id)
        if outcome.state == "succeeded":
            self._station.events.record("command", f"{kind} {outcome.detail}")
        else:
            self._station.events.record("command", f"{kind} failed: {outcome.detail}")
        await self._final(self._result(cmd_id, outcome.state, outcome.detail, outcome.result))

    async def _repeat(self, entry: Entry, how: str = "delivered again") -> None:
        """A second delivery of an id (or a query): what it answered last, never a second run."""
        what = entry.kind or "command"
        if entry.state == "running":
            self._station.events.record("command", f"{what} {how}: still running")
            await self._send(replace(self._result(entry.cmd_id, "delivered"), repeat=True))
            return
        self._station.events.record(
            "command", f"{what} {how}: answered {entry.state} from the record"
        )
        answer = self._result(entry.cmd_id, entry.state, entry.detail, entry.result)
        await self._final(replace(answer, repeat=True))

    # -- answering ----------------------------------------------------------------------

    def _result(
        self,
        cmd_id: str | None,
        state: StationState,
        detail: str = "",
        result: dict[str, Any] | None = None,
        *,
        claimed_id: str = "",
    ) -> Result:
        device_id = self._station.config.device_id
        return Result(device_id, cmd_id, state, detail, result or {}, _now_ms(), claimed_id)

    async def _send(self, result: Result) -> bool:
        """Publish one answer (QoS 1); False if the link could not take it."""
        topic = topics.cmd_result(self._station.config.device_id)
        try:
            await self._station.link.publish(topic, result.encode(), qos=1)
        except Exception as error:  # the ledger keeps it; the next connect sends it again
            log.info("command answer %s %s not sent: %s", result.cmd_id, result.state, error)
            return False
        return True

    async def _final(self, result: Result) -> None:
        """Publish a final answer and note in the ledger that the server has it."""
        if await self._send(result) and result.cmd_id is not None:
            await asyncio.to_thread(self._ledger.mark_reported, result.cmd_id)

    async def _report_forever(self) -> None:
        while True:
            await self._link_up.wait()
            self._link_up.clear()
            for entry in await asyncio.to_thread(self._ledger.unreported):
                if entry.cmd_id in self._running or entry.state == "running":
                    continue
                answer = self._result(entry.cmd_id, entry.state, entry.detail, entry.result)
                if not await self._send(answer):
                    break
                await asyncio.to_thread(self._ledger.mark_reported, entry.cmd_id)
