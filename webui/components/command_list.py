"""A list of commands, newest first, whose states change while the page is open.

One ``ui.timer`` per list re-reads one page of commands (``PAGE`` rows, an indexed query)
every ``REFRESH_S``: commands move on other replicas and in other processes too, so the
database, not a message per move, is what the list follows. It redraws only when what it
would show changed. Reading on a tick uses the actor the page was built for (the page's
session watch ends the page when that stops being true); paging and cancelling are a
person's actions and go through ``webui.forms``, as whoever is signed in at that moment.
Times read in the browser's zone, named, once the browser has said which that is.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from nicegui import Client, background_tasks, context, ui
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.db.models import Command
from core.errors import DomainError
from core.services import commands
from core.services.actor import Actor
from webui.components import command_words as words
from webui.components.browser_time import ask_zone, known_zone
from webui.forms import submit

log = logging.getLogger(__name__)
PAGE = 20  # rows a page: a busy station's last hour at a glance, read in about a millisecond
SHORT_ID = 16  # device ids up to this long stay on one line in the Device column
REFRESH_S = 1.0  # a state change shows within a second; one small read a second per open list


@dataclass(frozen=True)
class Filters:
    """Which commands a list shows (None: any)."""

    device_id: str | None = None
    kind: str | None = None
    state: str | None = None
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before


@dataclass(frozen=True)
class Page:
    """One page of commands and whether older ones follow."""

    filters: Filters
    offset: int
    rows: list[Command]
    more: bool


async def read(session: AsyncSession, actor: Actor, filters: Filters, offset: int = 0) -> Page:
    """The page of commands at ``offset`` matching ``filters``, newest first."""
    found = await commands.search(
        session,
        actor=actor,
        device_id=filters.device_id,
        kind=filters.kind,
        state=filters.state,
        since=filters.since,
        until=filters.until,
        limit=PAGE + 1,  # one more tells whether an older page exists
        offset=offset,
    )
    return Page(filters, offset, found[:PAGE], len(found) > PAGE)


def reading(filters: Filters, offset: int = 0) -> Callable[[AsyncSession, Actor], Awaitable[Page]]:
    """That page's read as a ``forms.submit`` work: by whoever acts when it runs."""

    async def work(session: AsyncSession, actor: Actor) -> Page:
        return await read(session, actor, filters, offset)

    return work


class CommandList:
    """Commands as a table: kind, arguments, state, sender, times, outcome, and Cancel."""

    def __init__(self, database: Database, actor: Actor, filters: Filters) -> None:
        self.database = database
        self.actor = actor
        self.show_device = filters.device_id is None  # a device's own page need not say it
        self.may_cancel = actor.can("commands:send")
        self.base = filters  # what the list shows unfiltered: "no commands yet"
        self.page = Page(filters, 0, [], more=False)
        self.zone = known_zone()
        self.zone_changed: Callable[[tzinfo], None] | None = None  # told the browser's zone
        self.timer: ui.timer | None = None
        self._asked = False
        self._drawn: tuple[object, ...] | None = None
        self._reads = 0  # reads begun; an older read finishing late is not shown
        self._shown_read = 0

    def build(self) -> None:
        """Lay out the table and its pager; the timer fills it once the browser is connected."""
        self.table = ui.grid().classes("w-full gap-x-4 gap-y-2 items-start").mark("command-list")
        columns = ["Command", "Arguments", "State", "Times", "Outcome"]
        if self.show_device:
            columns.insert(0, "Device")
        if self.may_cancel:
            columns.append("")
        widths = {"Arguments": "minmax(8rem, 1fr)", "Outcome": "minmax(10rem, 1.5fr)"}
        template = " ".join(widths.get(column, "auto") for column in columns)
        self.table.style(f"grid-template-columns: {template}")
        self.columns = columns
        with self.table:
            ui.label("Reading commands…").classes("col-span-full text-slate-500")
        with ui.row().classes("items-center gap-2") as self.pager:
            self.newer = ui.button("Newer", icon="chevron_left", on_click=lambda: self.turn(-PAGE))
            self.newer.props("flat dense").mark("commands-newer")
            self.span = ui.label().classes("text-sm text-slate-600").mark("commands-span")
            self.older = ui.button("Older", icon="chevron_right", on_click=lambda: self.turn(PAGE))
            self.older.props("flat dense").mark("commands-older")
        self.pager.set_visibility(False)
        self.timer = ui.timer(REFRESH_S, self.refresh)

    async def refresh(self) -> None:
        """Re-read the page shown (the timer's tick)."""
        client = context.client
        if not self._asked:  # the timer runs once the browser is connected: it can answer
            self._asked = True
            background_tasks.create(self._learn_zone(client), name="ask the browser's time zone")
        self._reads += 1
        ticket = self._reads
        try:
            async with self.database.session() as session:
                page = await read(session, self.actor, self.page.filters, self.page.offset)
        except DomainError as error:  # a filter the service refuses: say so, keep the rows
            self.span.text = error.message
            self.pager.set_visibility(True)
            return
        except Exception:  # the database away for a moment: the next tick reads again
            log.warning("commands not read", exc_info=True)
            return
        self.show(page, ticket)

    def show(self, page: Page, ticket: int | None = None) -> None:
        """Show ``page`` (unless a read begun after this one's is already shown)."""
        if ticket is None:
            self._reads += 1
            ticket = self._reads
        if ticket < self._shown_read:
            return
        self._shown_read = ticket
        self.page = page
        drawn = (
            page.filters,
            page.offset,
            page.more,
            self.zone,
            tuple(_signature(command) for command in page.rows),
        )
        if drawn != self._drawn:
            self._drawn = drawn
            self._draw()

    async def turn(self, step: int) -> None:
        """Another page: ``-PAGE`` for newer commands, ``PAGE`` for older ones."""
        offset = max(0, self.page.offset + step)
        page = await submit(self.database, "devices:read", reading(self.page.filters, offset))
        if page is not None:
            self.show(page)

    async def cancel(self, command_id: uuid.UUID) -> None:
        """Withdraw a queued command, then show the page as it now stands."""
        shown = self.page

        async def work(session: AsyncSession, actor: Actor) -> Page:
            await commands.cancel(session, actor=actor, command_id=command_id)
            return await read(session, actor, shown.filters, shown.offset)

        page = await submit(self.database, "commands:send", work, done="Command canceled")
        if page is not None:
            self.show(page)

    async def _learn_zone(self, client: Client) -> None:
        zone = await ask_zone(client)
        if zone is not None and zone != self.zone:
            self.zone = zone
            with client:
                if self.zone_changed is not None:
                    self.zone_changed(zone)
                self.show(self.page)

    def _draw(self) -> None:
        page = self.page
        self.table.clear()
        with self.table:
            for column in self.columns:
                ui.label(column).classes("text-sm font-semibold text-slate-600")
            if not page.rows:
                filtered = page.filters != self.base
                empty = "No commands match these filters." if filtered else "No commands yet."
                ui.label(empty).classes("col-span-full text-slate-600").mark("no-commands")
            for command in page.rows:
                self._row(command)
        first = page.offset + 1
        self.span.text = f"{first} to {page.offset + len(page.rows)}" if page.rows else ""
        self.newer.set_enabled(page.offset > 0)
        self.older.set_enabled(page.more)
        self.pager.set_visibility(page.offset > 0 or page.more)

    def _row(self, command: Command) -> None:
        state = words.state_of(command.state)
        if self.show_device:
            # A short id reads on one line; a long one may break anywhere rather than widen.
            wrap = "whitespace-nowrap" if len(command.device_id) <= SHORT_ID else "break-all"
            link = ui.link(command.device_id, f"/devices/{command.device_id}").classes(wrap)
            link.mark(f"command-device device-{command.id}")
        with ui.column().classes("gap-0"):
            kind = ui.label(words.kind_label(command.kind)).classes("font-medium whitespace-nowrap")
            kind.mark(f"command-kind kind-{command.id}")
            kind.tooltip(f"command {words.short_id(command)}")
            sender = command.created_by_name or "someone since deleted"
            ui.label(f"by {sender}").classes("text-sm text-slate-600").mark("command-by")
        ui.label(words.arguments(command)).mark(f"command-args args-{command.id}")
        chip = ui.chip(state.label, color=state.color, text_color="white").props("dense square")
        chip.mark(f"command-state state-{command.id}")
        if state.meaning:
            chip.tooltip(state.meaning)
        with ui.column().classes("gap-0 text-sm"):
            for line in words.times(command, self.zone):
                ui.label(line).classes("whitespace-nowrap")
        ui.label(words.outcome(command, self.zone)).classes("text-sm").mark(
            f"command-outcome outcome-{command.id}"
        )
        if self.may_cancel:
            if command.state == "queued":
                ui.button("Cancel", on_click=lambda c=command.id: self.cancel(c)).props(
                    "flat dense no-wrap color=negative"
                ).mark(f"command-cancel cancel-{command.id}")
            else:
                ui.label()


def _signature(command: Command) -> tuple[object, ...]:
    """What the row shows of a command: a change of any of it redraws the list."""
    return (
        command.id,
        command.state,
        command.detail,
        command.sent_at,
        command.delivered_at,
        command.finished_at,
    )
