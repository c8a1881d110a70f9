"""Command dispatch: signed commands out at QoS 2, the stations' answers in, deadlines kept.

- A command goes out only while presence says its device is online; until then it waits,
  queued. Each publish runs in its own task (at most ``MAX_PUBLISHING`` at once), so a slow
  one never holds up another station's command.
- A publish is counted in the database before it begins (``commands.attempt``, which also
  refuses a command that has ended or is past its deadline), signed with its deadline as
  ``expires_at``, and the command becomes ``sent`` only once the broker has completed the
  QoS 2 hand-over (aiomqtt's publish returns on PUBCOMP). A publish that failed is tried
  again after ``RETRY_S`` while the link stays up (a new connect sends it anyway).
- When a device comes online (or another instance of it does), its queued commands go out
  and its sent or delivered ones go out again: a station answers a command it has seen
  from its cache and never runs it twice, so a lost answer, a station restart or a server
  restart still ends in the station's own word. On every connect of the link, the same
  for every device online.
- Answers (``cmd/result``, QoS 1) are recorded by ``RESULT_WORKERS`` workers, one device's
  always by the same worker, in the order they came, so the receive loop never waits on
  the database and one device's answers never overtake each other. Answers that queued up
  meanwhile (``delivered`` and ``succeeded`` back to back) share one transaction.
- One loop ends what is past its deadline, sleeping until the earliest one due
  (``commands.next_deadline``: a command a station may have received is due only once no
  station can still accept it; at most ``DEADLINE_POLL_S``; woken when a command is
  created). Nothing lives only in memory: after a restart the database says what is
  pending and when it expires.
- The same loop asks, once, about a published command still unanswered just past its
  deadline (``commands.ask_due``): a signed ``command.query`` on the device's ``cmd``
  topic, behind any copy of the command, answered from the station's ledger without
  running anything (core.services.commands says what each answer does). When the device
  or the link comes back, what was asked and is still unanswered is asked again, as
  pending commands are sent again: the question may have been lost with the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable

from core.db.availability import log_failure
from core.db.engine import Database
from core.db.models import Command as CommandRow
from core.db.types import utcnow
from core.events import CommandChanged
from core.mqtt.link import LinkEvent, LinkState
from core.mqtt.routing import Route
from core.protocol import commands as protocol
from core.protocol import topics
from core.protocol.drops import Drop
from core.protocol.signing import SigningKey
from core.services import commands
from core.tasks import TaskSet
from webui.backbone.presence import DeviceState

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], Awaitable[None]]  # topic, payload; QoS 2, returns on PUBCOMP
# Publishes under way at once: a fleet-wide change goes out together, while each send's two
# short transactions stay well within the database pool (5 + 10 overflow by default).
MAX_PUBLISHING = 16
RESULT_WORKERS = 4  # answers recorded in parallel, one device's always by the same worker
RESULT_QUEUE = 1000  # answers waiting per worker before the receive loop waits too
RESULT_BATCH = 100  # answers that queued up meanwhile share one transaction (one commit)
# Longest sleep of the deadline loop: commands another replica created are seen this late.
DEADLINE_POLL_S = 1.0
RETRY_S = 2.0  # after a failed publish on a link that stays up (a timeout, say)
DRAIN_S = 5.0  # on stop, how long the answers already received may take to be recorded


class CommandDispatcher:
    """Publishes commands to online stations, records their answers, keeps their deadlines."""

    def __init__(
        self,
        database: Database,
        key: SigningKey,
        publish: Publish,
        *,
        online: Callable[[str], bool],
        link_up: Callable[[], bool],
    ) -> None:
        self._database = database
        self._key = key
        self._publish = publish
        self._online = online
        self._link_up = link_up
        self._window = asyncio.Semaphore(MAX_PUBLISHING)
        self._sending: set[uuid.UUID] = set()  # a command already on its way is not sent twice
        self._instances: dict[str, str] = {}  # device → station instance, while online
        self._wake = asyncio.Event()
        self._stopping = False  # no new sends, and the deadline loop ends at its next sleep
        self._sends = TaskSet("command sends")
        self._retries = TaskSet("command retries")  # only sleeping: cancelled at once on stop
        self._workers = TaskSet("command results")
        self._timer = TaskSet("command deadlines")
        self._results: list[asyncio.Queue[protocol.Result]] = []

    # -- wiring ------------------------------------------------------------------------

    def routes(self) -> list[Route[protocol.Result]]:
        """Every station's answers (QoS 1: each is recorded at least once, idempotently)."""
        return [Route(topics.ALL_CMD_RESULT, 1, _decode, self._on_result)]

    async def on_changed(self, event: CommandChanged) -> None:
        """A committed move: a new command goes out now if its device is online."""
        if event.state != "queued":
            return
        self._wake.set()  # its deadline may be the earliest
        if self._link_up() and self._online(event.device_id):
            self._send(event.command_id, event.device_id)

    def on_presence(self, state: DeviceState) -> None:
        """A device came online (or another instance of it did): send what it has pending."""
        if state.status != "online":
            self._instances.pop(state.device_id, None)
            return
        known = self._instances.get(state.device_id)
        self._instances[state.device_id] = state.stream or (known or "")
        if known is None or (state.stream and state.stream != known):
            self._send_pending(state.device_id)

    def on_link(self, event: LinkEvent) -> None:
        """The link is up again: send what every online device has pending."""
        if event.state is LinkState.CONNECTED:
            self._send_pending(None)

    async def start(self) -> None:
        """Start the answer workers and the deadline loop (deadlines come from the database)."""
        self._results = [asyncio.Queue(RESULT_QUEUE) for _ in range(RESULT_WORKERS)]
        for number, queue in enumerate(self._results):
            self._workers.spawn(self._record_results(queue), name=f"command results {number}")
        self._timer.spawn(self._keep_deadlines())

    async def stop(self) -> None:
        """Let the sends under way and the answers received finish (briefly), then stop.

        Tasks are cancelled only past ``DRAIN_S``: one cancelled mid-transaction would leave
        its database connection to the garbage collector.
        """
        self._stopping = True
        self._wake.set()
        await self._retries.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_S):
                await self._sends.join()
                for queue in self._results:
                    await queue.join()
                await self._timer.join()
        await self._sends.cancel()
        await self._timer.cancel()
        await self._workers.cancel()
        self._instances.clear()
        self._stopping = False

    # -- sending -----------------------------------------------------------------------

    def _send_pending(self, device_id: str | None) -> None:
        if self._link_up() and not self._stopping:
            self._sends.spawn(self._pending(device_id), name="pending commands")

    async def _pending(self, device_id: str | None) -> None:
        async with self._database.session() as session:
            waiting = await commands.pending(session, device_id=device_id)
            asked = await commands.asked_unanswered(session, device_id=device_id)
        for command in waiting:
            if self._online(command.device_id):
                self._send(command.id, command.device_id)
        self._ask([c for c in asked if self._online(c.device_id)])

    def _send(self, command_id: uuid.UUID, device_id: str) -> None:
        if command_id not in self._sending and not self._stopping:
            self._sending.add(command_id)
            self._sends.spawn(
                self._publish_one(command_id, device_id), name=f"command {command_id}"
            )

    async def _publish_one(self, command_id: uuid.UUID, device_id: str) -> None:
        failed = False
        try:
            async with self._window:
                if not self._link_up():  # counted attempts make a command uncancelable
                    return
                async with self._database.session() as session:
                    command = await commands.attempt(session, command_id=command_id)
                if command is None:
                    return  # ended, canceled or past its deadline meanwhile: never sent late
                await self._publish(topics.cmd(command.device_id), self._signed(command))
                if command.state == "queued":
                    async with self._database.session() as session:
                        await commands.mark_sent(session, command_id=command_id)
        except Exception as error:
            log.warning("command %s not sent: %s", command_id, error or type(error).__name__)
            failed = True
        finally:
            self._sending.discard(command_id)
        if failed:  # a new connect sends it again anyway; a link that stayed up, after a while
            self._retries.spawn(self._retry(command_id, device_id), name=f"command {command_id}")

    async def _retry(self, command_id: uuid.UUID, device_id: str) -> None:
        await asyncio.sleep(RETRY_S)
        if self._link_up() and self._online(device_id):
            self._send(command_id, device_id)

    def _signed(self, command: CommandRow) -> bytes:
        args = command.args
        if command.kind == protocol.UPDATE_CONFIG:
            args = {"version": command.config_version, "changes": command.args}
        wire = protocol.Command(
            cmd_id=str(command.id),
            device_id=command.device_id,
            kind=command.kind,
            args=args,
            issued_at=int(time.time() * 1000),
            expires_at=int(command.expires_at.timestamp() * 1000),
        )
        return wire.signed(self._key)

    def _ask(self, unanswered: list[CommandRow]) -> None:
        """Ask each command's station what became of it (never sends the command again)."""
        if unanswered and self._link_up() and not self._stopping:
            queries = [(c.device_id, self._query(c)) for c in unanswered]
            self._sends.spawn(self._publish_queries(queries), name="command queries")

    async def _publish_queries(self, queries: list[tuple[str, bytes]]) -> None:
        for device_id, payload in queries:
            try:
                async with self._window:
                    await self._publish(topics.cmd(device_id), payload)
            except Exception as error:  # asked again on the next connect, or the grace rules
                log.warning("command query to %s not sent: %s", device_id, error)

    def _query(self, command: CommandRow) -> bytes:
        now_ms = int(time.time() * 1000)
        query = protocol.Query(
            cmd_id=str(command.id),
            device_id=command.device_id,
            cmd_expires_at=int(command.expires_at.timestamp() * 1000),
            issued_at=now_ms,
            expires_at=now_ms + protocol.QUERY_LIFE_MS,
        )
        return query.signed(self._key)

    # -- answers -----------------------------------------------------------------------

    async def _on_result(self, result: protocol.Result) -> None:
        await self._results[hash(result.device_id) % len(self._results)].put(result)

    async def _record_results(self, queue: asyncio.Queue[protocol.Result]) -> None:
        while True:
            batch = [await queue.get()]
            while not queue.empty() and len(batch) < RESULT_BATCH:
                batch.append(queue.get_nowait())
            try:
                await self._record(batch)
            finally:
                for _ in batch:
                    queue.task_done()

    async def _record(self, batch: list[protocol.Result]) -> None:
        """Record answers that queued up together in one transaction, each alone on error."""
        try:
            async with self._database.session() as session:
                outcomes = [
                    await commands.record_result(session, result=r, device_id=r.device_id)
                    for r in batch
                ]
        except Exception:
            if len(batch) > 1:
                for result in batch:
                    await self._record([result])
                return
            log.exception("answer of %s to %s not recorded", batch[0].device_id, batch[0].cmd_id)
            return
        for result, outcome in zip(batch, outcomes, strict=True):
            if outcome in ("late", "refused"):
                who = result.cmd_id or result.claimed_id
                log.warning("%s's answer %s (%s) %s", result.device_id, who, result.state, outcome)

    # -- deadlines ---------------------------------------------------------------------

    async def _keep_deadlines(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                delay = await self._expire()
            except Exception:
                log_failure(log, "command deadlines not kept this round")
                delay = DEADLINE_POLL_S
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _expire(self) -> float:
        """End what is due; the seconds until the next deadline (at most DEADLINE_POLL_S)."""
        now = utcnow()
        async with self._database.session() as session:
            deadline = await commands.next_deadline(session)
            asked: list[CommandRow] = []
            if deadline is not None and deadline <= now:
                ended = await commands.expire_due(session, now=now)
                if ended:
                    log.info("%d commands ended at their deadline", len(ended))
                asked = await commands.ask_due(session, now=now)
                deadline = await commands.next_deadline(session)
        if asked:  # committed: no other replica asks about these
            log.info("asking about %d unanswered commands past their deadline", len(asked))
            self._ask(asked)
        if deadline is None:
            return DEADLINE_POLL_S
        return min(DEADLINE_POLL_S, max(0.0, (deadline - utcnow()).total_seconds()))


def _decode(topic: topics.ParsedTopic, payload: bytes) -> protocol.Result | Drop:
    assert topic.device_id is not None  # the route matches device topics only
    return protocol.Result.parse(payload, topic.device_id)
