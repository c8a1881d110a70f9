"""/configs/bulk: one configuration change for many devices, followed to applied or refused.

Needs ``config:write`` and ``commands:send``: each chosen device gets an UpdateConfig
command (its own configuration version), all in one batch. The page previews which devices
a choice matches, sends, then follows each device's command on one timer, reading the
batch from the database once a second until every command has ended.
"""

from __future__ import annotations

import uuid
from typing import Any

from nicegui import ui
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.errors import InvalidError
from core.services import config_batches, devices
from core.services.actor import Actor
from core.services.config_batches import Progress, Selector
from webui.forms import submit, value
from webui.layout import frame, guard, not_allowed
from webui.services import Services

FOLLOW_EVERY_S = 1.0  # a station answers within a second or two; people read no faster
SHOWN_IN_PREVIEW = 30  # ids listed before "and N more"
HOW = {
    "enabled": "All enabled devices",
    "pattern": "Enabled devices whose id matches a pattern",
    "chosen": "Devices I choose",
}
COLUMNS: list[dict[str, Any]] = [
    {"name": "device_id", "label": "Device", "field": "device_id", "align": "left"},
    {"name": "version", "label": "Version", "field": "version", "align": "left"},
    {"name": "outcome", "label": "Where it stands", "field": "outcome", "align": "left"},
]


def register(services: Services) -> None:
    """Register /configs/bulk."""

    @ui.page("/configs/bulk")
    async def bulk_config_page() -> None:
        actor = await guard(services, "config:write")
        if actor is None:
            return
        if not actor.can("commands:send"):
            not_allowed(services, actor, "commands:send")
            return
        async with services.database.session() as session:
            known = await devices.list_devices(session, actor=actor)
        with frame(services, "Change many devices", actor):
            BulkConfigView(services.database, actor, [d.id for d in known if d.enabled]).build()


def summary(rows: list[Progress]) -> str:
    """``2 applied · 1 refused · 3 on their way`` (of how many)."""
    applied = sum(r.state == "succeeded" for r in rows)
    refused = sum(r.state in ("failed", "rejected") for r in rows)
    missed = sum(r.ended for r in rows) - applied - refused
    waiting = len(rows) - applied - refused - missed
    parts = [f"{applied} applied", f"{refused} refused"]
    if missed:
        parts.append(f"{missed} not reached in time")
    if waiting:
        parts.append(f"{waiting} on their way")
    return f"Of {len(rows)} devices: " + " · ".join(parts)


class BulkConfigView:
    """Choose devices, enter the change, preview, send, and follow each device."""

    def __init__(self, database: Database, actor: Actor, enabled_ids: list[str]) -> None:
        self.database = database
        self.actor = actor  # reads the batch on the page's timer; actions ask again
        self.enabled_ids = enabled_ids
        self.batch_id: uuid.UUID | None = None
        self.timer: ui.timer | None = None

    def build(self) -> None:
        """Lay out the choice, the change and the (empty) progress table."""
        with ui.card().classes("w-full"):
            ui.label("Which devices").classes("font-semibold")
            self.how = ui.radio(HOW, value="enabled").mark("bulk-how")
            self.pattern = ui.input("Id pattern", placeholder="press-*").mark("bulk-pattern")
            self.pattern.bind_visibility_from(self.how, "value", value="pattern")
            self.chosen = ui.select(self.enabled_ids, multiple=True, label="Devices", value=[])
            self.chosen.classes("min-w-64").mark("bulk-devices")
            self.chosen.bind_visibility_from(self.how, "value", value="chosen")
        with ui.card().classes("w-full"):
            ui.label("The change").classes("font-semibold")
            with ui.row().classes("items-end gap-4"):
                self.interval = ui.number("Seconds between samples", suffix="s")
                self.interval.classes("w-56").mark("bulk-interval")
                self.heartbeat = ui.number("Seconds between heartbeats", suffix="s")
                self.heartbeat.classes("w-56").mark("bulk-heartbeat")
                self.timeout = (
                    ui.number(
                        "Give each station up to",
                        value=config_batches.DEFAULT_TIMEOUT_S,
                        suffix="s",
                        min=1,
                    )
                    .classes("w-56")
                    .mark("bulk-timeout")
                )
            with ui.row():
                ui.button("Preview", on_click=self.preview).props("outline").mark("bulk-preview")
                ui.button("Send to these devices", on_click=self.send).mark("bulk-send")
            self.error = ui.label().classes("text-negative").mark("bulk-error")
            self.matched = ui.label().mark("bulk-matched")
        with ui.card().classes("w-full") as self.progress:
            ui.label("Each device").classes("font-semibold")
            self.summary = ui.label().mark("bulk-summary")
            self.table = ui.table(columns=COLUMNS, rows=[], row_key="device_id")
            self.table.props("dense flat").classes("w-full").mark("bulk-table")
            self.table.pagination = {"rowsPerPage": 50}
        self.progress.set_visibility(False)

    def _selector(self) -> Selector:
        if self.how.value == "chosen":
            return Selector(devices=tuple(self.chosen.value or ()))
        if self.how.value == "pattern":
            if not value(self.pattern):  # never "every device" for a pattern left empty
                msg = "type a pattern for the ids, such as press-*"
                raise InvalidError(msg, field="selector.pattern")
            return Selector(enabled=True, pattern=value(self.pattern))
        return Selector(enabled=True)

    def _changes(self) -> dict[str, Any]:
        changes: dict[str, Any] = {}
        if self.interval.value is not None:
            changes["interval_s"] = self.interval.value
        beat = self.heartbeat.value
        if beat is not None:  # a whole number typed in a number field arrives as a float
            changes["heartbeat_s"] = int(beat) if float(beat).is_integer() else beat
        return changes

    def _fields(self) -> dict[str, Any]:
        return {
            "": self.error,
            "changes.interval_s": self.interval,
            "changes.heartbeat_s": self.heartbeat,
            "selector.pattern": self.pattern,
            "timeout_s": self.timeout,
        }

    async def preview(self) -> None:
        """Show which devices the choice matches now."""

        async def work(session: AsyncSession, actor: Actor) -> list[str]:
            selector = self._selector()
            return await config_batches.select(session, actor=actor, selector=selector)

        self.matched.text = ""
        chosen = await submit(self.database, "devices:read", work, self._fields())
        if chosen is not None:
            listed = ", ".join(chosen[:SHOWN_IN_PREVIEW])
            more = (
                f" and {len(chosen) - SHOWN_IN_PREVIEW} more"
                if len(chosen) > SHOWN_IN_PREVIEW
                else ""
            )
            self.matched.text = f"{len(chosen)} device(s): {listed}{more}"

    async def send(self) -> None:
        """Queue the change for every chosen device (all or none), then follow them."""
        changes, timeout = self._changes(), self.timeout.value

        async def work(session: AsyncSession, actor: Actor) -> uuid.UUID:
            if timeout is None or not float(timeout).is_integer():
                msg = "give each station a whole number of seconds"
                raise InvalidError(msg, field="timeout_s")
            batch_id, _ = await config_batches.send(
                session,
                actor=actor,
                changes=changes,
                selector=self._selector(),
                timeout_s=int(timeout),
            )
            return batch_id

        batch_id = await submit(self.database, "config:write", work, self._fields())
        if batch_id is None:
            return
        self.batch_id = batch_id
        self.progress.set_visibility(True)
        await self.follow()
        if self.timer is None:
            with self.progress:
                self.timer = ui.timer(FOLLOW_EVERY_S, self.follow)
        self.timer.activate()

    async def follow(self) -> None:
        """Show where each device's change stands; stop once every one has ended."""
        if self.batch_id is None:
            return
        async with self.database.session() as session:
            rows = await config_batches.progress(session, actor=self.actor, batch_id=self.batch_id)
        self.summary.text = summary(rows)
        self.table.rows = [
            {
                "device_id": r.device_id,
                "version": f"v{r.config_version}" if r.config_version else "—",
                "outcome": r.outcome,
            }
            for r in rows
        ]
        if all(r.ended for r in rows) and self.timer is not None:
            self.timer.deactivate()
