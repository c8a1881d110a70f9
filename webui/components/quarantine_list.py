"""Quarantined samples as a table: which sample, when, why, and the raw values it carried.

Filters (device, reason, time received) and paging are a person's actions: each reads
through ``webui.forms.submit``, as whoever is signed in at that moment, with
``telemetry:quarantine`` checked again; so does showing a raw payload whole. A raw payload
is the station's own text and may be hostile: it is only ever put in a label (text, never
markup), clipped in its row, and whole in a dialog that the row's button (naming the full
length) opens.
Times read in the browser's zone, named, once the browser has said which that is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, tzinfo

from nicegui import Client, background_tasks, context, ui
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.services.actor import Actor
from core.services.telemetry import quarantine
from core.services.telemetry.quarantine import Filters, Held, Page
from webui.components.browser_time import ask_zone, known_zone, named
from webui.forms import submit

ROUTE = "/telemetry/quarantine"
ANY = ""  # a filter's "any" choice (a select's value cannot be None and show a label)
PAGE = 25  # rows a page: one bad station's burst at a glance, each row a few lines high
PREVIEW = 160  # raw characters a row shows: about three lines of the raw column
RANGES = {
    ANY: ("Any time", None),
    "hour": ("Last hour", timedelta(hours=1)),
    "day": ("Last 24 hours", timedelta(days=1)),
    "week": ("Last 7 days", timedelta(days=7)),
}
COLUMNS = ["Device", "Stream", "Seq", "Sample time", "Received", "Reason", "Detail", "Raw values"]
# Ids, seqs and times keep to a line; the reason's detail and the raw text wrap, and may
# break anywhere (a raw payload can be one 100 KB word), rather than widen the page.
TEMPLATE = "auto auto auto auto auto minmax(7rem, auto) minmax(9rem, 1fr) minmax(16rem, 2fr)"


def link(device_id: str) -> str:
    """Where one device's quarantined samples are listed."""
    return f"{ROUTE}?device_id={device_id}"


def reading(filters: Filters, offset: int) -> Callable[[AsyncSession, Actor], Awaitable[Page]]:
    """That page's read as a ``forms.submit`` work: by whoever acts when it runs."""

    async def work(session: AsyncSession, actor: Actor) -> Page:
        return await quarantine.page(
            session, actor=actor, filters=filters, limit=PAGE, offset=offset
        )

    return work


def preview(held: Held) -> str:
    """The raw payload, or its start and an ellipsis when it goes on."""
    return held.raw if held.raw_chars <= PREVIEW else f"{held.raw[:PREVIEW]}…"


class QuarantineList:
    """The filters, the table of samples, its pager, and a dialog for one raw payload."""

    def __init__(self, database: Database, devices: dict[str, int], shown: Page) -> None:
        self.database = database
        self.devices = devices
        self.page = shown
        self.zone = known_zone()
        self._asked = False

    def build(self) -> None:
        """Lay out filters, table and pager, filled with ``shown``."""
        chosen = self.page.filters
        with ui.row().classes("items-center gap-4"):
            devices = {ANY: "Any device"} | {d: f"{d} ({n})" for d, n in self.devices.items()}
            if chosen.device_id and chosen.device_id not in devices:  # asked for, has none
                devices[chosen.device_id] = chosen.device_id
            self.device = ui.select(devices, value=chosen.device_id or ANY, label="Device")
            self.device.classes("min-w-48").mark("filter-device")
            reasons = {ANY: "Any reason"} | {c: r.label for c, r in quarantine.REASONS.items()}
            self.reason = ui.select(reasons, value=chosen.reason or ANY, label="Reason")
            self.reason.classes("min-w-44").mark("filter-reason")
            ranges = {key: label for key, (label, _) in RANGES.items()}
            self.range = ui.select(ranges, value=ANY, label="Received").classes("min-w-40")
            self.range.mark("filter-range")
            for select in (self.device, self.reason, self.range):
                select.on_value_change(self.apply)
        self.count = ui.label().classes("text-sm text-slate-600").mark("quarantine-count")
        self.table = ui.grid().classes("w-full gap-x-4 gap-y-3 items-start").mark("quarantine")
        self.table.style(f"grid-template-columns: {TEMPLATE}")
        with ui.row().classes("items-center gap-2") as self.pager:
            self.newer = ui.button("Newer", icon="chevron_left", on_click=lambda: self.turn(-PAGE))
            self.newer.props("flat dense").mark("quarantine-newer")
            self.span = ui.label().classes("text-sm text-slate-600").mark("quarantine-span")
            self.older = ui.button("Older", icon="chevron_right", on_click=lambda: self.turn(PAGE))
            self.older.props("flat dense").mark("quarantine-older")
        self._draw()

    def tick(self) -> None:
        """Ask the browser's zone once it is connected (the page's ticker calls this)."""
        client = context.client
        if not self._asked and client.has_socket_connection:  # asking earlier sends half a page
            self._asked = True
            background_tasks.create(self._learn_zone(client), name="ask the browser's time zone")

    def filters(self) -> Filters:
        """The filters as chosen; a time range counts back from now."""
        span = RANGES.get(str(self.range.value), ("", None))[1]
        return Filters(
            device_id=self.device.value or None,
            reason=self.reason.value or None,
            since=None if span is None else datetime.now(UTC) - span,
        )

    async def apply(self) -> None:
        """Show the first page of what the filters now choose."""
        shown = await submit(self.database, quarantine.PERMISSION, reading(self.filters(), 0))
        if shown is not None:
            self.show(shown)

    async def turn(self, step: int) -> None:
        """Another page: ``-PAGE`` for newer samples, ``PAGE`` for older ones."""
        offset = max(0, self.page.offset + step)
        shown = await submit(
            self.database, quarantine.PERMISSION, reading(self.page.filters, offset)
        )
        if shown is not None:
            self.show(shown)

    async def reveal(self, held: Held) -> None:
        """Open one sample's raw payload whole, read again as whoever asks."""

        async def work(session: AsyncSession, actor: Actor) -> Held:
            return await quarantine.sample(
                session, actor=actor, device_id=held.device_id, stream=held.stream, seq=held.seq
            )

        whole = await submit(self.database, quarantine.PERMISSION, work)
        if whole is None:
            return
        with ui.dialog() as dialog, ui.card().classes("w-full max-w-4xl").mark("raw-dialog"):
            ui.label(f"{whole.device_id} · stream {whole.stream} · seq {whole.seq}").classes(
                "font-semibold"
            )
            ui.label(
                f"{whole.raw_chars:,} characters: the sample's values as the server read them, "
                "as JSON (beyond ASCII as \\u escapes, JSON numbers with a fraction as strings)"
            ).classes("text-sm text-slate-600")
            with ui.scroll_area().classes("w-full h-96 border rounded bg-slate-50"):
                raw = ui.label(whole.raw).classes("font-mono text-xs whitespace-pre-wrap break-all")
                raw.mark("raw-whole")
            ui.button("Close", on_click=dialog.close).props("flat")
        dialog.open()

    def show(self, shown: Page) -> None:
        """Show ``shown`` in place of the page on screen."""
        self.page = shown
        self._draw()

    async def _learn_zone(self, client: Client) -> None:
        zone = await ask_zone(client)
        if zone is not None and zone != self.zone:
            self.zone = zone
            with client:
                self._draw()

    def _draw(self) -> None:
        shown = self.page
        many = f"{shown.total:,} quarantined sample{'' if shown.total == 1 else 's'}"
        self.count.text = f"{many}, newest received first · times in {_zone_name(self.zone)}"
        self.count.set_visibility(bool(shown.rows))
        self.table.clear()
        with self.table:
            if not shown.rows:  # the words alone: a header over nothing, or "0 samples", says less
                empty = (
                    "No quarantined samples match these filters."
                    if shown.filters != Filters()
                    else "No quarantined samples: every sample received so far was stored."
                )
                ui.label(empty).classes("col-span-full text-slate-600").mark("no-quarantine")
            else:
                for column in COLUMNS:
                    ui.label(column).classes("text-sm font-semibold text-slate-600")
            for held in shown.rows:
                self._row(held)
        last = shown.offset + len(shown.rows)
        self.span.text = f"{shown.offset + 1} to {last} of {shown.total:,}" if shown.rows else ""
        self.newer.set_enabled(shown.offset > 0)
        self.older.set_enabled(shown.more)
        self.pager.set_visibility(shown.offset > 0 or shown.more)

    def _row(self, held: Held) -> None:
        key = f"held-{held.device_id}-{held.stream}-{held.seq}"
        link = ui.link(held.device_id, f"/devices/{held.device_id}").classes("whitespace-nowrap")
        link.mark(f"held-device {key}")
        ui.label(held.stream).classes("break-all")
        ui.label(str(held.seq)).classes("whitespace-nowrap").mark(f"held-seq {key}")
        ui.label(named(held.ts, self.zone)).classes("whitespace-nowrap text-sm")
        ui.label(named(held.received_at, self.zone)).classes("whitespace-nowrap text-sm")
        reason = quarantine.reason_of(held.reason)
        words = ui.label(reason.label).classes("font-medium").mark(f"held-reason {key}")
        words.tooltip(reason.meaning)
        ui.label(held.detail).classes("text-sm break-words min-w-0").mark(f"held-detail {key}")
        with ui.column().classes("gap-1 min-w-0 items-start"):
            raw = ui.label(preview(held)).classes("font-mono text-xs break-all")
            raw.mark(f"held-raw {key}")
            if held.raw_chars > PREVIEW:
                whole = f"Show all {held.raw_chars:,} characters"
                ui.button(whole, icon="open_in_full", on_click=lambda h=held: self.reveal(h)).props(
                    "flat dense no-caps"
                ).mark(f"held-show {key}")


def _zone_name(zone: tzinfo) -> str:
    """``Europe/Berlin``; ``UTC`` for UTC."""
    return str(getattr(zone, "key", None) or "UTC")
