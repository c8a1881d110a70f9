"""The sync conflict log as a table: what, which field, the value kept and the value lost,
each with when, where and by whom; filtered by station.

Times read in the browser's zone, named, once the browser has said which that is. Choosing
a station is a person's action: it reads through ``webui.forms.submit``, as whoever is
signed in at that moment, with the permission checked again.
"""

from __future__ import annotations

from datetime import tzinfo

from nicegui import Client, background_tasks, context, ui
from nicegui.events import ValueChangeEventArguments
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.services import sync_conflict_views, sync_conflicts
from core.services.actor import Actor
from core.services.sync_conflict_views import ConflictView, Side
from core.sync.capture import SERVER
from webui.components.browser_time import ask_zone, known_zone, named
from webui.forms import submit

ALL = ""  # the station filter's "every station"
COLUMNS = ["What", "Field", "Kept", "Lost"]
# Names and fields keep to a line when they can; values (a description, a setting's JSON)
# wrap rather than widen the page or be cut off.
TEMPLATE = "minmax(9rem, 1fr) minmax(7rem, auto) minmax(11rem, 1.5fr) minmax(11rem, 1.5fr)"


def made(side: Side, zone: tzinfo) -> list[str]:
    """When, and by whom where, a value was made: ["14:02:11 CET", "by olga at press-07"]."""
    where = "on the server" if side.origin == SERVER else f"at {side.origin}" if side.origin else ""
    who = " ".join(part for part in (f"by {side.actor}" if side.actor else "", where) if part)
    when = named(side.at, zone) if side.at is not None else "at a time not on record"
    return [when, who] if who else [when]


class ConflictLog:
    """The newest conflicts first, of every station or of one."""

    def __init__(
        self,
        database: Database,
        stations: list[str],
        station: str | None,
        shown: list[ConflictView],
    ) -> None:
        self.database = database
        self.stations = stations
        self.station = station or ALL
        self.shown = shown
        self.zone = known_zone()
        self._asked = False

    def build(self) -> None:
        """Lay out the filter and the table, filled."""
        with ui.row().classes("items-center gap-4"):
            options = {ALL: "All stations"} | {s: s for s in self.stations}
            if self.station not in options:  # asked for a station with no conflicts
                options[self.station] = self.station
            self.filter = ui.select(
                options, value=self.station, label="Station", on_change=self.choose
            ).classes("min-w-[12rem]")
            self.filter.mark("conflict-station")
            self.count = ui.label().classes("text-sm text-slate-600").mark("conflict-count")
        self.table = ui.grid().classes("w-full gap-x-6 gap-y-3 items-start").mark("conflicts")
        self.table.style(f"grid-template-columns: {TEMPLATE}")
        self._draw()

    def tick(self) -> None:
        """Ask the browser's zone once it is connected (the page's ticker calls this)."""
        client = context.client
        if not self._asked and client.has_socket_connection:  # asking earlier sends half a page
            self._asked = True
            background_tasks.create(self._learn_zone(client), name="ask the browser's time zone")

    async def choose(self, event: ValueChangeEventArguments) -> None:
        """Show the conflicts of the station chosen (every station's for "All stations")."""
        station = str(event.value or ALL)

        async def work(session: AsyncSession, actor: Actor) -> list[ConflictView]:
            return await sync_conflict_views.views(session, actor=actor, device_id=station or None)

        found = await submit(self.database, sync_conflicts.READ_PERMISSION, work)
        if found is not None:
            self.station, self.shown = station, found
            self._draw()

    async def _learn_zone(self, client: Client) -> None:
        zone = await ask_zone(client)
        if zone is not None and zone != self.zone:
            self.zone = zone
            with client:
                self._draw()

    def _draw(self) -> None:
        many = len(self.shown)
        whose = f" from {self.station}'s edits" if self.station else ""
        self.count.text = f"{many} conflict{'' if many == 1 else 's'}{whose}, newest first"
        self.table.clear()
        with self.table:
            for column in COLUMNS:
                ui.label(column).classes("text-sm font-semibold text-slate-600")
            if not self.shown:
                empty = (
                    f"No conflicts from {self.station}'s edits."
                    if self.station
                    else "No conflicts: no edit has yet met a concurrent change to its field."
                )
                ui.label(empty).classes("col-span-full text-slate-600").mark("no-conflicts")
            for conflict in self.shown:
                self._row(conflict)

    def _row(self, conflict: ConflictView) -> None:
        marker = f"conflict-{conflict.id}"
        ui.label(conflict.subject).classes("font-medium break-words").mark(f"conflict {marker}")
        ui.label(conflict.field_label).classes("break-words").mark(f"conflict-field {marker}")
        for word, side in (("kept", conflict.kept), ("lost", conflict.lost)):
            with ui.column().classes("gap-0 min-w-0").mark(f"conflict-{word} {marker}"):
                value = ui.label(side.shown).classes("break-words")
                value.classes("font-medium" if word == "kept" else "line-through text-slate-500")
                for line in made(side, self.zone):
                    ui.label(line).classes("text-sm text-slate-600")
