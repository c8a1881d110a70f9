"""The device page's configuration history: each version, who made it, when, what it changed.

``load`` reads what the configuration card shows (asked, run, the drift, the newest
versions) in one transaction, so an action can act and read back atomically. People holding
``config:write`` get a rollback per older version: confirmed in a dialog that lists what it
would change, checked again when it acts, and made against the version shown, so a change
someone else made meanwhile is reported instead of being overwritten.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from nicegui import ui
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.errors import ConflictError
from core.services import device_configs
from core.services.actor import Actor
from core.services.config_history import Change, Drift, Entry, diff
from webui.components.browser_time import named
from webui.forms import allowed, submit

PAGE = 10  # versions shown at first, and added by each "older" click
# How each version came to be, in words (config_history.Source).
SOURCES = {
    "edit": "edited",
    "rollback": "rollback",
    "command": "by an UpdateConfig command",
    "bulk": "one change to many devices",
    "withdrawn": "withdrawn: its command never reached the station",
    "station": "overridden at the station",
}


@dataclass(frozen=True)
class Snapshot:
    """A device's configuration as the page shows it: asked, run, drift and history."""

    desired: dict[str, Any]
    version: int  # 0: nothing asked yet
    reported: dict[str, Any]
    reported_version: int
    reported_at: datetime | None
    drift: Drift | None
    entries: list[Entry]  # newest first, at most PAGE
    more: bool  # older versions exist


async def load(session: AsyncSession, actor: Actor, device_id: str) -> Snapshot:
    """The device's configuration and its newest versions, as ``actor`` may see them."""
    config = await device_configs.get(session, actor=actor, device_id=device_id)
    entries = await device_configs.history(
        session, actor=actor, device_id=device_id, limit=PAGE + 1
    )
    return Snapshot(
        desired=dict(config.desired),
        version=config.desired_version,
        reported=dict(config.reported),
        reported_version=config.reported_version,
        reported_at=config.reported_at,
        drift=await device_configs.drift(session, actor=actor, config=config),
        entries=entries[:PAGE],
        more=len(entries) > PAGE,
    )


def changes_text(changes: tuple[Change, ...] | list[Change] | None) -> list[str]:
    """What a version changed, a line per setting."""
    if changes is None:
        return ["(the history begins here: what this version changed is not known)"]
    return [c.text for c in changes] or ["(the same settings as the version before)"]


class ConfigHistory:
    """The list of versions, newest first, with a rollback for each older one."""

    def __init__(
        self,
        database: Database,
        device_id: str,
        *,
        may_write: bool,
        shown: Callable[[Snapshot], None],
    ) -> None:
        self.database = database
        self.device_id = device_id
        self.may_write = may_write
        self.shown = shown  # the card shows a snapshot read after a rollback
        self.zone: tzinfo = UTC
        self.snapshot: Snapshot | None = None
        self.older: list[Entry] = []
        self.has_older = False

    def build(self) -> None:
        """Lay out the list (empty until ``show``)."""
        ui.label("History").classes("font-semibold")
        self.rows = ui.column().classes("w-full gap-2").mark("config-history")
        self.more = ui.button("Show older versions", on_click=self.show_older).props("flat")
        self.more.mark("config-older")
        self.dialog = ui.dialog()

    def show(self, snapshot: Snapshot, zone: tzinfo) -> None:
        """List the versions of ``snapshot`` (older pages are dropped: they may be stale)."""
        self.snapshot, self.zone, self.older = snapshot, zone, []
        self.has_older = snapshot.more
        self._render()

    def _render(self) -> None:
        assert self.snapshot is not None
        self.rows.clear()
        with self.rows:
            if not self.snapshot.entries:
                ui.label("No version yet: nothing has been asked of the station.")
            for entry in [*self.snapshot.entries, *self.older]:
                self._row(entry, self.snapshot.version)
        self.more.set_visibility(self.has_older)

    def _row(self, entry: Entry, current: int) -> None:
        with ui.column().classes("gap-0").mark(f"config-version {entry.version}"):
            with ui.row().classes("items-center gap-3"):
                ui.label(f"v{entry.version}").classes("font-mono font-semibold")
                ui.label(self._by(entry)).classes("text-slate-600").mark(
                    f"config-version-by {entry.version}"
                )
                if entry.version == current:
                    ui.badge("asked now").props("color=primary outline")
                elif self.may_write:
                    ui.button("Roll back to this", on_click=lambda: self.confirm(entry)).props(
                        "flat dense"
                    ).mark(f"config-rollback {entry.version}")
            for line in changes_text(entry.changes):
                ui.label(line).classes("font-mono text-sm pl-8").mark(
                    f"config-change {entry.version}"
                )

    def _by(self, entry: Entry) -> str:
        """When, who and how: ``14:02:11 CET · ada · rollback to v3``."""
        how = SOURCES.get(entry.source, entry.source)
        if entry.source == "rollback" and entry.note:
            how = entry.note
        elif entry.note:
            how = f"{how} · {entry.note}"
        return f"{named(entry.changed_at, self.zone)} · {entry.changed_by} · {how}"

    async def show_older(self) -> None:
        """Add the next page of older versions to the list."""
        if self.snapshot is None or not self.snapshot.entries:
            return
        oldest = (self.older or self.snapshot.entries)[-1].version

        async def work(session: AsyncSession, actor: Actor) -> list[Entry]:
            return await device_configs.history(
                session, actor=actor, device_id=self.device_id, limit=PAGE + 1, before=oldest
            )

        found = await submit(self.database, "devices:read", work)
        if found is not None:
            self.older += found[:PAGE]
            self.has_older = len(found) > PAGE
            self._render()

    async def confirm(self, entry: Entry) -> None:
        """Ask before rolling back, showing what it would change."""
        if self.snapshot is None or await allowed(self.database, "config:write") is None:
            return
        current = self.snapshot.version
        self.dialog.clear()
        with self.dialog, ui.card().classes("w-[32rem]").mark("config-rollback-dialog"):
            ui.label(f"Ask for the settings of version {entry.version} again?").classes(
                "font-semibold"
            )
            ui.label(f"This makes version {current + 1}, which changes:")
            for line in changes_text(diff(self.snapshot.desired, entry.settings)):
                ui.label(line).classes("font-mono text-sm")
            with ui.row():
                ui.button("Roll back", on_click=lambda: self.roll_back(entry, current)).mark(
                    "config-rollback-confirm"
                )
                ui.button("Cancel", on_click=self.dialog.close).props("flat")
        self.dialog.open()

    async def roll_back(self, entry: Entry, current: int) -> None:
        """Make a new version equal to ``entry``, unless the configuration changed meanwhile."""
        self.dialog.close()

        async def work(session: AsyncSession, actor: Actor) -> tuple[Snapshot, str]:
            try:
                await device_configs.rollback(
                    session,
                    actor=actor,
                    device_id=self.device_id,
                    to_version=entry.version,
                    expected_version=current,
                )
                refused = ""
            except ConflictError as error:  # nothing was written: reading on is safe
                refused = error.message
            return await load(session, actor, self.device_id), refused

        result = await submit(self.database, "config:write", work)
        if result is None:
            return
        snapshot, refused = result
        self.shown(snapshot)
        if refused:
            ui.notify(f"Nothing was rolled back: {refused}.", type="warning", multi_line=True)
        else:
            ui.notify(
                f"Version {snapshot.version} asks for the settings of version {entry.version} "
                "again",
                type="positive",
            )
