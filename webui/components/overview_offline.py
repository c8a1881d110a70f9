"""The overview's latest offline events: which device went, why, when, and whether it is back.

Read from the database when the page is built and again whenever presence sees a device
change state (``Presence.transitions``), in the background, one read at a time.
"""

from __future__ import annotations

import logging
from datetime import tzinfo

from nicegui import background_tasks, ui

from core.db.engine import Database
from core.db.models import OfflineEvent
from core.services import offline_events
from core.services.actor import Actor
from webui.backbone.presence import Presence
from webui.components.browser_time import named
from webui.components.overview_attention import device_link

log = logging.getLogger(__name__)
REASONS = {
    "clean": "stopped cleanly",
    "lost": "connection lost",
    "stale": "stopped reporting",
}


def describe(event: OfflineEvent, zone: tzinfo) -> str:
    """Why and when, e.g. ``connection lost · 14:02:11 CET, back 14:05:30 CET``."""
    why = REASONS.get(event.reason, event.reason)
    start = named(event.started_at, zone)
    if event.ended_at is None:
        return f"{why} · since {start}, still offline"
    return f"{why} · {start}, back {named(event.ended_at, zone)}"


class OfflineCard:
    """The fleet's latest offline periods, newest first, kept current on presence changes."""

    def __init__(
        self,
        database: Database,
        actor: Actor,
        presence: Presence,
        zone: tzinfo,
        events: list[OfflineEvent],
    ) -> None:
        self.database = database
        self.actor = actor
        self.presence = presence
        self.zone = zone
        self.events = events
        self._read = presence.transitions  # what ``events`` were read after
        self._loads = 0
        self._loading = False
        self._drawn = -1  # the load drawn
        with ui.card().classes("w-full").mark("offline-events"):
            ui.label("Latest offline events").classes("font-semibold")
            self.body = ui.column().classes("w-full gap-1")
        self._show()

    def update(self) -> None:
        """Read again after a transition; redraw once read."""
        transitions = self.presence.transitions
        if transitions != self._read and not self._loading:
            self._loading = True
            background_tasks.create(self._reload(transitions), name="reload offline events")
        if self._loads != self._drawn:
            self._show()

    async def _reload(self, transitions: int) -> None:
        try:
            async with self.database.session() as session:
                self.events = await offline_events.latest(session, actor=self.actor)
            self._read = transitions  # a change during the read is read again next tick
            self._loads += 1
        except Exception:
            log.warning("latest offline events not read", exc_info=True)
        finally:
            self._loading = False

    def _show(self) -> None:
        self._drawn = self._loads
        self.body.clear()
        with self.body:
            if not self.events:
                ui.label("No device has gone offline yet.").mark("offline-empty")
            for event in self.events:
                color = "negative" if event.ended_at is None else "grey-6"
                with ui.row().classes("items-center gap-2"):
                    ui.icon("cloud_off" if event.ended_at is None else "cloud_done", color=color)
                    device_link(event.device_id)
                    text = describe(event, self.zone)
                    ui.label(text).mark(f"offline-event {event.device_id}")
