"""The station's side of sync: the server's pages applied to the replica, its edits sent up.

- **Down.** Every ``sync/down`` message is verified against the server's keys (a bad
  signature is a counted, logged drop) and handled in the order it came. A page of changes
  is applied in a thread, one replica call at a time (``io``). A page that says ``more``,
  or one the replica cannot join (its ``after`` is past the cursor: a page was missed),
  makes the station pull from its cursor. Answers settle the station's edits; a refused
  one is reverted by the replica and told in the station's log with the server's reason.
- **Pulls.** The station pulls the changes after its cursor on every connect, whenever
  the server says it is online (its retained status: a restarted server pushes only what
  comes after), when a page asks for it, and after ``QUIET_PULL_S`` without one (a pushed
  page the broker lost is fetched then at the latest). At most one pull waits for its page
  (for ``PULL_WAIT_S``; then it is sent again), so a busy server is not flooded.
- **Up.** Edits recorded in the replica wait there (pending) until answered. They are sent
  on every connect, on ``kick()`` (right after an edit) and, unanswered, again every
  ``RESEND_S``; the server answers an edit it has already received the same way again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import orjson

from core.mqtt.link import LinkEvent, LinkState
from core.mqtt.routing import Route
from core.protocol import topics
from core.protocol.drops import Drop, DropReason
from core.protocol.messages import server_online
from core.protocol.sync import (
    MAX_BYTES,
    MAX_EDITS,
    Answer,
    Answers,
    ChangePage,
    Edit,
    Pull,
    Up,
    read_down,
)
from desktop.agent.replica import Replica, ReplicaStatus
from desktop.agent.station import Station

log = logging.getLogger(__name__)
T = TypeVar("T")

# An edit the server has not answered within this long is sent again (a lost message, a
# server that was down): long enough for a busy server to answer, short enough to notice.
RESEND_S = 10.0
PULL_WAIT_S = 10.0  # a pull whose page has not come within this long is sent again
# With no page for this long, the station pulls anyway: a pushed page the broker dropped
# (with no later one to reveal the gap) is fetched within this long.
QUIET_PULL_S = 300.0
UP_BYTES = MAX_BYTES - 4096  # edits batched into one sync.up, with room for its envelope
# The server's latest answers kept for the window to ask after ("was my edit refused, and
# why?"): far more than one operator has waiting at once.
KEPT_ANSWERS = 256


class StationSync:
    """Keeps the station's replica in step with the server and sends its edits up."""

    def __init__(self, station: Station, replica: Replica) -> None:
        self._station = station
        self._replica = replica
        self.io = asyncio.Lock()  # one replica call at a time, from this event loop
        self.pages = 0  # pages applied since the station started
        self._sent: dict[uuid.UUID, float] = {}  # pending edit -> when it was last sent
        self._answers: OrderedDict[uuid.UUID, Answer] = OrderedDict()  # the latest, by edit
        self._kicked = asyncio.Event()  # send pending edits now
        self._pull_wanted = asyncio.Event()
        self._answered = asyncio.Event()  # the page answering the pull in flight came
        self._pulled_since: int | None = None  # the cursor the pull in flight asked from

    # -- as a part of the station -------------------------------------------------------

    def routes(self) -> Sequence[Route[Any]]:
        """The server's pages and answers, and its presence (online: pull)."""
        d = self._station.config.device_id
        return [
            Route(topics.sync_down(d), 1, self._decode, self._on_down),
            Route(topics.SERVER_STATUS, 1, server_online, self._on_server_status),
        ]

    def loops(self) -> Sequence[Callable[[], Coroutine[Any, Any, None]]]:
        """The puller and the sender."""
        return [self._pull_forever, self._send_forever]

    async def stop(self) -> None:
        """Nothing runs on its own."""

    def on_link(self, event: LinkEvent) -> None:
        """On a connect: pull from the cursor and send every pending edit."""
        if event.state is LinkState.CONNECTED:
            self._sent.clear()
            self._pull_wanted.set()
            self._kicked.set()

    def kick(self) -> None:
        """Send pending edits now, if connected (call on the event loop after an edit)."""
        self._kicked.set()

    async def record(self, edit: Callable[[], T]) -> T:
        """Run ``edit`` (a ``local_users`` call on the replica) in a thread, then send it."""
        result = await self._call(edit)
        self.kick()
        return result

    async def status(self) -> ReplicaStatus:
        """The replica's cursor, last sync, pending edits and users (for the window)."""
        return await self._call(self._replica.status)

    async def _call(self, work: Callable[[], T]) -> T:
        async with self.io:
            return await asyncio.to_thread(work)

    # -- down ----------------------------------------------------------------------------

    def _decode(self, topic: topics.ParsedTopic, payload: bytes) -> ChangePage | Answers | Drop:
        config = self._station.config
        message = read_down(payload, config.device_id, config.server_keys)
        if isinstance(message, str):
            return Drop(DropReason.MALFORMED, f"sync message refused: {message}")
        return message

    async def _on_down(self, message: ChangePage | Answers) -> None:
        if isinstance(message, Answers):
            await self._settle(message)
            return
        joined = await self._call(lambda: self._replica.apply_page(message))
        if joined:
            self.pages += 1
        if message.after == self._pulled_since:
            self._answered.set()
        if not joined or message.more:
            self._pull_wanted.set()

    async def _settle(self, message: Answers) -> None:
        settled = await self._call(lambda: self._replica.settle(message.answers))
        for edit, answer in settled:
            self._sent.pop(edit.change_id, None)
            self._answers[edit.change_id] = answer
            while len(self._answers) > KEPT_ANSWERS:
                self._answers.popitem(last=False)
            if not answer.accepted:
                self._station.events.record(
                    "sync",
                    f"the server refused {edit.username}'s change of {_fields(edit)}: "
                    f"{answer.reason}; reverted",
                )

    def answer_of(self, change_id: uuid.UUID) -> Answer | None:
        """The server's answer to one of this station's edits, once it came (the latest
        ``KEPT_ANSWERS`` are kept): accepted, or refused with the server's reason."""
        return self._answers.get(change_id)

    async def _on_server_status(self, online: bool) -> None:
        if online:
            self._pull_wanted.set()

    # -- pulls ---------------------------------------------------------------------------

    async def _pull_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(QUIET_PULL_S):
                    await self._pull_wanted.wait()
            self._pull_wanted.clear()
            if not self._station.link.connected:
                continue  # the next connect asks again
            if not await self._pull():
                continue
            try:
                async with asyncio.timeout(PULL_WAIT_S):
                    await self._answered.wait()
            except TimeoutError:
                self._pull_wanted.set()
            finally:
                self._pulled_since = None

    async def _pull(self) -> bool:
        """Ask for the changes after the cursor; False if the link could not take it."""
        replica = self._replica
        cursor, pending = await self._call(lambda: (replica.cursor, len(replica.pending())))
        d = self._station.config.device_id
        self._answered.clear()
        self._pulled_since = cursor  # pushed pages do not answer it: only one from here
        try:
            await self._station.link.publish(
                topics.sync_up(d), Pull(d, cursor, pending).encode(), qos=1
            )
        except Exception as error:  # the next connect pulls again
            log.info("sync pull not sent: %s", error or type(error).__name__)
            self._pulled_since = None
            return False
        return True

    # -- up ------------------------------------------------------------------------------

    async def _send_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RESEND_S):
                    await self._kicked.wait()
            self._kicked.clear()
            if self._station.link.connected:
                await self._send_pending()

    async def _send_pending(self) -> None:
        """Send the pending edits not sent within ``RESEND_S``, oldest first."""
        pending = await self._call(self._replica.pending)
        self._sent = {
            e.change_id: self._sent[e.change_id] for e in pending if e.change_id in self._sent
        }
        now = time.monotonic()
        due = [e for e in pending if now - self._sent.get(e.change_id, -RESEND_S) >= RESEND_S]
        d = self._station.config.device_id
        for batch in _batches(due):
            up = Up(d, tuple(batch), pending=len(pending))
            try:
                await self._station.link.publish(topics.sync_up(d), up.encode(), qos=1)
            except Exception as error:  # sent again on the next connect or round
                log.info("sync edits not sent: %s", error or type(error).__name__)
                return
            for edit in batch:
                self._sent[edit.change_id] = now


def _batches(edits: Sequence[Edit]) -> Iterator[list[Edit]]:
    """Edits in batches of at most ``MAX_EDITS`` that fit one message."""
    batch: list[Edit] = []
    size = 0
    for edit in edits:
        edit_size = len(orjson.dumps(edit.to_wire()))
        if batch and (len(batch) >= MAX_EDITS or size + edit_size > UP_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(edit)
        size += edit_size
    if batch:
        yield batch


_USER_FIELDS = {
    "display_name": "display name",
    "password_hash": "password",
    "is_active": "enabled flag",
    "deleted": "removal",
    "username": "username",
}


def _fields(edit: Edit) -> str:
    """What an edit changed, in words: "display name", "roles", "setting interval_s"…"""
    words: dict[str, None] = {}
    for change in edit.changes:
        if change.entity == "user":
            word = _USER_FIELDS.get(change.field, change.field.replace("_", " "))
        elif change.entity == "user_role":
            word = "roles"
        elif change.entity == "role_permission":
            word = "a role's permissions"
        elif change.entity == "device_config":
            word = f"setting {change.field.partition('.')[2] or change.field}"
        else:
            word = f"{change.entity.replace('_', ' ')} {change.field.replace('_', ' ')}"
        words[word] = None
    return ", ".join(words) or "nothing"
