"""Sync over MQTT, the server's side: the change log pushed down, pulls and edits answered.

- **Push.** Every committed change to a synced row wakes the publisher (``SyncChanged``);
  a sweep every ``SWEEP_S`` also catches what other processes committed (the CLI, another
  replica). Each round sequences the log in its own transaction, then sends each enabled
  device one signed page (``sync/down``, QoS 1) of its changes after the cursor it was last
  brought to (read for all of them at once: ``sync_log.pages_for``); a page that says
  ``more`` leaves the rest to the station's pulls. A device
  first seen starts at the head: its station pulls from its own cursor on every connect
  and whenever the server comes online, and a pushed page it cannot join (``after`` above
  its cursor) makes it pull too. Pages go out together, bounded by the link's window.
- **Pulls and edits** (``sync/up``, QoS 1) are served per device, one message at a time
  in the order they came, and at most ``MAX_SERVING`` devices at once (each holds a
  database connection): a station flooding pulls gets one answer per round trip (a newer
  pull replaces the one waiting), and past ``MAX_QUEUED_UPS`` waiting batches of edits
  the newest is dropped (the station sends unanswered edits again). A pull is answered
  with one page after its cursor. Each edit is received in a transaction of its own; the
  accepted changes go to the station in a page *before* the answers (which drop the edits
  from its pending overlay), then the answers in one signed message. An edit whose
  transaction failed is not answered: the station sends it again. A message that cannot
  be used, or comes from an unknown or disabled device, is a counted, logged drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from core.db.availability import database_unavailable, log_failure
from core.db.engine import Database
from core.events import SyncChanged
from core.mqtt.routing import Route
from core.protocol import topics
from core.protocol.drops import Drop, DropReason
from core.protocol.signing import SigningKey
from core.protocol.sync import Answer, Answers, ChangePage, Pull, Up, read_up
from core.services import devices, sync_conflicts, sync_inbox, sync_log, sync_peers
from core.settings import Settings
from core.tasks import TaskSet
from webui.backbone.directory import DeviceDirectory, Standing

log = logging.getLogger(__name__)

Publish = Callable[[str, bytes], Awaitable[None]]  # topic, payload; QoS 1
DropCounter = Callable[[DropReason, str, str], None]  # reason, detail, topic
# Changes other processes commit (the CLI, another replica) announce nothing here: they
# reach the stations within this long. A quiet round is one short transaction.
SWEEP_S = 1.0
# Devices served at once: each holds one database connection, and the pool is 5 + 10.
MAX_SERVING = 8
# Batches of edits one device may have waiting; the station re-sends what goes unanswered.
MAX_QUEUED_UPS = 8
DRAIN_S = 5.0  # on stop, how long pulls and edits already received may take to be answered


@dataclass
class _Peer:
    """What one device has asked for and not been answered yet, in the order it came."""

    waiting: deque[Pull | Up] = field(default_factory=deque)  # one pull at most: the newest
    ups: int = 0  # batches of edits among them
    serving: bool = False  # a task works through this device's messages


class SyncWire:
    """Pushes the change log to the stations and answers their pulls and edits."""

    def __init__(
        self,
        database: Database,
        settings: Settings,
        key: SigningKey,
        *,
        publish: Publish,
        directory: DeviceDirectory,
        drop: DropCounter,
        link_up: Callable[[], bool],
        page_limit: int = sync_log.PAGE_CHANGES,
    ) -> None:
        self._database = database
        self._settings = settings
        self._key = key
        self._publish = publish
        self._directory = directory
        self._drop = drop
        self._link_up = link_up
        self.page_limit = page_limit  # field changes a page holds at most
        self._published: dict[str, int] = {}  # device -> the cursor it was brought to
        self._pushed_head = -1  # every known device was brought to it (-1: no round yet)
        self._peers: dict[str, _Peer] = {}
        self._slots = asyncio.Semaphore(MAX_SERVING)
        self._wake = asyncio.Event()
        self._loop = TaskSet("sync publisher")
        self._serving = TaskSet("sync inbox")

    # -- wiring ------------------------------------------------------------------------

    def routes(self) -> list[Route[Pull | Up]]:
        """Every station's pulls and edits (QoS 1; shared among replicas when asked)."""
        share = topics.shared if self._settings.mqtt_shared_ingest else str
        return [Route(share(topics.ALL_SYNC_UP), 1, _decode, self._on_up)]

    async def on_changed(self, _event: SyncChanged) -> None:
        """Synced rows changed (committed): push soon, without holding up the committer."""
        self._wake.set()

    async def start(self) -> None:
        """Sequence what is waiting (pulls answered from now on see it), start the publisher.

        A database away at start leaves the sequencing to the publisher's rounds, which do
        it first: the server starts all the same.
        """
        try:
            async with self._database.session() as session:
                await sync_log.sequence(session)
        except Exception as error:
            if not database_unavailable(error):
                raise
            log_failure(log, "sync log not sequenced at start; the publisher's rounds will")
        self._loop.spawn(self._publish_forever(), name="sync publisher")

    async def stop(self) -> None:
        """Stop pushing; answer (briefly) what was received, then stop serving."""
        await self._loop.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DRAIN_S):
                await self._serving.join()
        await self._serving.cancel()
        self._peers.clear()

    # -- pushing -----------------------------------------------------------------------

    async def _publish_forever(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._round()
            except Exception:
                log_failure(log, "sync round failed; the next sweep tries again")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SWEEP_S):
                    await self._wake.wait()

    async def _round(self) -> None:
        """Sequence the log, then bring every enabled device to its head."""
        async with self._database.session() as session:
            head = await sync_log.sequence(session)
        if head <= self._pushed_head or not self._link_up():
            return
        start = head if self._pushed_head < 0 else self._pushed_head
        behind: dict[str, int] = {}
        async with self._database.session() as session:
            for device_id, enabled in (await devices.all_enabled(session)).items():
                after = self._published.setdefault(device_id, start)
                if enabled and after < head:
                    behind[device_id] = after
            pages = await sync_log.pages_for(session, behind, limit=self.page_limit)
        sent = await asyncio.gather(*(self._push(d, page) for d, page in pages.items()))
        if all(sent):
            self._pushed_head = head

    async def _push(self, device_id: str, page: sync_log.Page) -> bool:
        """Send one page; the device counts as brought to the head (it pulls any rest)."""
        try:
            await self._send_page(device_id, page)
        except Exception as error:  # the next sweep sends it again
            log.info("sync page for %s not sent: %s", device_id, error or type(error).__name__)
            return False
        return True

    async def _send_page(self, device_id: str, page: sync_log.Page) -> None:
        wire = ChangePage(device_id, page.after, page.cursor, page.head, tuple(page.changes))
        await self._publish(topics.sync_down(device_id), wire.encode(self._key))
        self._published[device_id] = max(self._published.get(device_id, 0), page.head)

    # -- serving pulls and edits -------------------------------------------------------

    async def _on_up(self, message: Pull | Up) -> None:
        """Queue a device's message; never waits (this runs in the link's receive loop)."""
        device_id = message.device_id
        peer = self._peers.setdefault(device_id, _Peer())
        if isinstance(message, Pull):  # one answer from the newest cursor serves them all
            for older in [m for m in peer.waiting if isinstance(m, Pull)]:
                peer.waiting.remove(older)
            peer.waiting.append(message)
        elif peer.ups >= MAX_QUEUED_UPS:
            detail = f"{peer.ups} batches of edits already wait; the station sends again"
            self._drop(DropReason.BUSY, detail, topics.sync_up(device_id))
        else:
            peer.waiting.append(message)
            peer.ups += 1
        if not peer.serving:
            peer.serving = True
            self._serving.spawn(self._serve(device_id, peer), name=f"sync of {device_id}")

    async def _serve(self, device_id: str, peer: _Peer) -> None:
        """Answer a device's messages one at a time, each in a slot of its own."""
        try:
            while peer.waiting:
                async with self._slots:
                    message = peer.waiting.popleft()
                    if isinstance(message, Up):
                        peer.ups -= 1
                    standing = await self._directory.standing(device_id)
                    if standing is not Standing.ENABLED:
                        self._refuse(device_id, standing)
                    elif isinstance(message, Pull):
                        await self._answer_pull(message)
                    else:
                        await self._answer_up(message)
        finally:
            peer.serving = False

    def _refuse(self, device_id: str, standing: Standing) -> None:
        reason = DropReason.DISABLED_DEVICE
        if standing is Standing.UNKNOWN:
            reason = DropReason.UNKNOWN_DEVICE
        self._drop(reason, f"device {device_id} is {standing.value}", topics.sync_up(device_id))

    async def _answer_pull(self, pull: Pull) -> None:
        device_id = pull.device_id
        async with self._database.session() as session:
            page = await sync_log.page(
                session, device_id=device_id, after=pull.since, limit=self.page_limit
            )
            await sync_peers.note_contact(
                session, device_id=device_id, cursor=pull.since, pending=pull.pending
            )
        try:
            await self._send_page(device_id, page)
        except Exception as error:  # the station pulls again when no page comes
            log.info("sync page for %s not sent: %s", device_id, error or type(error).__name__)

    async def _bring(self, device_id: str, *, after: int) -> None:
        """Send a station the accepted changes of its edits before their answers.

        The answer drops an edit from the station's pending overlay: the canonical value
        must be there by then, or the station would show the old one until the next page.
        A station whose cursor is below ``after`` applies the page and pulls the rest.
        """
        async with self._database.session() as session:
            head = await sync_log.sequence(session)
        if after >= head:
            return  # a push sent them already
        async with self._database.session() as session:
            page = await sync_log.page(
                session, device_id=device_id, after=after, limit=self.page_limit
            )
        try:
            await self._send_page(device_id, page)
        except Exception as error:  # the answers still go: the next page brings the values
            log.info("sync page for %s not sent: %s", device_id, error or type(error).__name__)

    async def _answer_up(self, up: Up) -> None:
        device_id = up.device_id
        async with self._database.session() as session:
            conflicts_before = await sync_conflicts.count(session, device_id=device_id)
            before = await sync_log.head_cursor(session)
        answers: list[Answer] = []
        for edit in up.edits:
            try:
                async with self._database.session() as session:
                    answer = await sync_inbox.receive(
                        session, device_id=device_id, edit=edit, settings=self._settings
                    )
            except Exception:  # unanswered: the station sends it again
                log.exception("edit %s of %s not received", edit.change_id, device_id)
                continue
            answers.append(answer)
        accepted = sum(1 for answer in answers if answer.accepted)
        async with self._database.session() as session:
            conflicts = await sync_conflicts.count(session, device_id=device_id)
            await sync_peers.note_contact(
                session, device_id=device_id, pending=max(up.pending - len(answers), 0)
            )
            await sync_peers.note_answers(
                session,
                device_id=device_id,
                accepted=accepted,
                refused=len(answers) - accepted,
                conflicts=max(conflicts - conflicts_before, 0),
            )
        if accepted:
            self._wake.set()  # the accepted changes go down to every station now
            await self._bring(device_id, after=max(self._published.get(device_id, 0), before))
        if answers:
            payload = Answers(device_id, tuple(answers)).encode(self._key)
            try:
                await self._publish(topics.sync_down(device_id), payload)
            except Exception as error:  # the station sends the edits again; answers repeat
                log.info("sync answers for %s not sent: %s", device_id, error)


def _decode(topic: topics.ParsedTopic, payload: bytes) -> Pull | Up | Drop:
    assert topic.device_id is not None  # the route matches device topics only
    return read_up(payload, topic.device_id)
