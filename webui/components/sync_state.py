"""Each station's sync state in words, live: "up to date" or "37 changes behind", when it
last synced (in the browser's zone), its edits waiting for the server, its conflicts.

One ``SyncWatch`` per page pulls every station's state (one small read) each ``REFRESH_S``
on its own ``ui.timer``: stations sync through the server's MQTT side, possibly on another
replica, so the database is what the page follows. Each ``SyncLine`` shows one station and
sends the browser nothing while its words stay the same. Reading on a tick uses the actor
the page was built for (the page's session watch ends the page when that stops being true).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import tzinfo

from nicegui import Client, background_tasks, context, ui

from core.db.engine import Database
from core.services import sync_conflicts, sync_peers
from core.services.actor import Actor
from core.services.sync_peers import PeerState
from webui.components.browser_time import ask_zone, known_zone, named

log = logging.getLogger(__name__)
REFRESH_S = 2.0  # a station pulls and answers within seconds; one small read per open page
BEHIND_CLASS = "text-amber-700"  # news, not an alarm: Quasar's warning yellow is faint on white
CONFLICTS_ROUTE = "/sync/conflicts"  # the conflict log's page; ?station= narrows it


def conflicts_of(device_id: str) -> str:
    """Where the conflicts of ``device_id``'s edits are listed."""
    return f"{CONFLICTS_ROUTE}?station={device_id}"


def _counted(count: int, one: str, many: str) -> str:
    """``1 edit``, ``2 edits``, ``no edits``."""
    return f"{count or 'no'} {one if count == 1 else many}"


@dataclass(frozen=True)
class SyncWords:
    """What a line shows of a station's sync state."""

    headline: str  # "up to date", "37 changes behind", "never synced"
    last_sync: str  # "last sync 14:02:11 CET" ("" when never synced)
    waiting: str  # "2 edits waiting" ("no edits waiting")
    conflicts: str  # "1 conflict" ("no conflicts")
    behind: bool  # the headline is news (a station behind)


def describe(state: PeerState | None, zone: tzinfo) -> SyncWords:
    """A station's sync state in words (None: it never synced)."""
    if state is None or state.last_sync_at is None:
        return SyncWords("never synced", "", "no edits waiting", "no conflicts", behind=False)
    return SyncWords(
        headline=f"{_counted(state.lag, 'change', 'changes')} behind"
        if state.lag
        else "up to date",
        last_sync=f"last sync {named(state.last_sync_at, zone)}",
        waiting=f"{_counted(state.pending_up, 'edit', 'edits')} waiting",
        conflicts=_counted(state.conflicts, "conflict", "conflicts"),
        behind=state.lag > 0,
    )


class SyncLine:
    """One station's sync state on a line: "Sync: …", then the details (all of them when
    ``full``; on the fleet's rows only those that are not zero)."""

    def __init__(self, device_id: str, *, full: bool, conflicts_link: str | None = None) -> None:
        self.full = full
        self._shown: SyncWords | None = None
        with ui.row().classes("items-center gap-x-3 gap-y-0").mark(f"sync {device_id}"):
            ui.icon("sync").classes("text-slate-500")
            self.headline = ui.label().classes("" if full else "text-sm")
            self.headline.mark(f"sync-state {device_id}")
            self.last_sync = ui.label().classes("text-sm text-slate-600")
            self.last_sync.mark(f"sync-last {device_id}")
            self.waiting = ui.label().classes("text-sm text-slate-600")
            self.waiting.mark(f"sync-waiting {device_id}")
            if conflicts_link is None:
                self.conflicts: ui.label | ui.link = ui.label()
            else:  # those who may read the conflict log go to this station's part of it
                self.conflicts = ui.link(target=conflicts_link)
            self.conflicts.classes("text-sm").mark(f"sync-conflicts {device_id}")

    def show(self, state: PeerState | None, zone: tzinfo) -> None:
        """Show ``state`` (sends nothing to the browser when the words are unchanged)."""
        shown = describe(state, zone)
        if shown == self._shown:
            return
        self._shown = shown
        self.headline.text = f"Sync: {shown.headline}"
        if shown.behind:
            self.headline.classes(add=BEHIND_CLASS)
        else:
            self.headline.classes(remove=BEHIND_CLASS)
        self.last_sync.text = shown.last_sync
        self.last_sync.set_visibility(bool(shown.last_sync))
        self.waiting.text = shown.waiting
        self.conflicts.text = shown.conflicts
        if not self.full:  # a fleet row says only what is not zero
            self.waiting.set_visibility(not shown.waiting.startswith("no "))
            self.conflicts.set_visibility(not shown.conflicts.startswith("no "))


class SyncWatch:
    """Every station's sync state for one page (or one station's), re-read on one timer."""

    def __init__(
        self,
        database: Database,
        actor: Actor,
        states: list[PeerState],
        *,
        device_id: str | None = None,
    ) -> None:
        self.database = database
        self.actor = actor
        self.device_id = device_id
        self.states = {state.device_id: state for state in states}
        self.lines: dict[str, SyncLine] = {}
        self.zone = known_zone()
        self.timer: ui.timer | None = None
        self._asked = False

    def line(self, device_id: str, *, full: bool) -> SyncLine:
        """A line for ``device_id`` here, filled with what the watch knows now; its conflicts
        link to the conflict log for those who may read it (the log checks again)."""
        link = conflicts_of(device_id) if self.actor.can(sync_conflicts.READ_PERMISSION) else None
        line = self.lines[device_id] = SyncLine(device_id, full=full, conflicts_link=link)
        line.show(self.states.get(device_id), self.zone)
        return line

    def start(self) -> None:
        """Start re-reading (after the page is laid out, like the ticker)."""
        if self.timer is None:
            self.timer = ui.timer(REFRESH_S, self.refresh, immediate=False)

    async def refresh(self) -> None:
        """Re-read every station's state and show it (the timer's tick)."""
        client = context.client
        if not self._asked:  # the timer runs once the browser is connected: it can answer
            self._asked = True
            background_tasks.create(self._learn_zone(client), name="ask the browser's time zone")
        try:
            async with self.database.session() as session:
                states = await sync_peers.states(
                    session, actor=self.actor, device_id=self.device_id
                )
        except Exception:  # the database away for a moment: the next tick reads again
            log.warning("sync states not read", exc_info=True)
            return
        self.states = {state.device_id: state for state in states}
        self._show()

    def _show(self) -> None:
        for device_id, line in self.lines.items():
            line.show(self.states.get(device_id), self.zone)

    async def _learn_zone(self, client: Client) -> None:
        zone = await ask_zone(client)
        if zone is not None and zone != self.zone:
            self.zone = zone
            with client:
                self._show()
