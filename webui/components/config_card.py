"""The device page's configuration: what is asked of the station, what it runs, the history.

People holding ``config:write`` also get a form for the sampling interval and heartbeat.
The form remembers the version it was filled from and changes only that version: if
someone else made a newer one meanwhile, nothing is sent, the card shows the newer version
and says so, and what was typed stays for a second, deliberate send. The station's side
is reloaded when its heartbeats name a version other than the one shown. Times read in
the browser's zone, once it has said which that is.
"""

from __future__ import annotations

import time
from datetime import tzinfo
from typing import Any

from nicegui import background_tasks, ui
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.errors import ConflictError
from core.services import device_configs
from core.services.actor import Actor
from webui.components import config_words
from webui.components.browser_time import ask_zone, known_zone, named
from webui.components.config_history import ConfigHistory, Snapshot, load
from webui.forms import submit

RELOAD_EVERY_S = 1.0
_BOUNDS = (("low", "below"), ("high", "above"))

__all__ = ["ConfigCard", "Snapshot", "describe", "load"]


def describe(settings: dict[str, Any]) -> str:
    """Settings as a person reads them."""
    parts = []
    if "interval_s" in settings:
        parts.append(f"a sample every {settings['interval_s']:g} s")
    if "heartbeat_s" in settings:
        parts.append(f"a heartbeat every {settings['heartbeat_s']} s")
    units = settings.get("units")
    if isinstance(units, dict) and units:
        parts.append("units " + ", ".join(f"{k} {v}" for k, v in sorted(units.items())))
    thresholds = settings.get("thresholds")
    if isinstance(thresholds, dict) and thresholds:
        unit_of = units if isinstance(units, dict) else {}
        parts.append(
            "alarms " + ", ".join(_bounds(k, v, unit_of) for k, v in sorted(thresholds.items()))
        )
    return "; ".join(parts) or "the station's own settings"


def _bounds(channel: str, bounds: Any, units: dict[str, Any]) -> str:
    """``temp below 5 °C or above 80 °C``."""
    unit = f" {units[channel]}" if units.get(channel) else ""
    given = bounds if isinstance(bounds, dict) else {}
    said = [f"{word} {given[key]}{unit}" for key, word in _BOUNDS if key in given]
    return f"{channel} " + " or ".join(said)


def _reported(snapshot: Snapshot, zone: tzinfo) -> str:
    if not snapshot.reported_version:
        return "The station has not reported a configuration yet."
    at = named(snapshot.reported_at, zone)
    return (
        f"The station runs version {snapshot.reported_version} (reported {at}): "
        f"{describe(snapshot.reported)}."
    )


def drift_text(snapshot: Snapshot, zone: tzinfo) -> str:
    """Whether the station runs what is asked: ``station runs v3, v5 asked since 14:02 CET``."""
    if not snapshot.version:
        return ""
    drift = snapshot.drift
    if drift is None:
        return f"In step: the station runs version {snapshot.version}, the one asked."
    runs = (
        f"the station runs v{drift.reported_version}"
        if drift.reported_version
        else "the station has applied no version yet"
    )
    since = f" since {named(drift.since, zone)}" if drift.since else ""
    return f"Not in step: {runs}, v{drift.desired_version} asked{since}."


class ConfigCard:
    """Desired and reported configuration, the drift, the form to change it, the history."""

    def __init__(self, database: Database, actor: Actor, device_id: str) -> None:
        self.database = database
        self.actor = actor
        self.device_id = device_id
        self.may_write = actor.can("config:write")
        self.shown_reported = 0
        self.form_version = 0  # the version the form was filled from: the one it changes
        self.snapshot: Snapshot | None = None
        self.zone = known_zone()
        self._loading = False
        self._next_reload = 0.0

    def build(self, snapshot: Snapshot) -> None:
        """Lay the card out, showing ``snapshot``; then learn the browser's time zone."""
        with ui.card().classes("w-full"):
            ui.label("Configuration").classes("font-semibold")
            self.desired = ui.label().mark("config-desired")
            self.reported = ui.label().mark("config-reported")
            self.drift = ui.label().mark("config-drift")
            if self.may_write:
                with ui.row().classes("items-end gap-4"):
                    # Wide enough for the whole label: a cut label hides what is asked.
                    self.interval = ui.number(config_words.INTERVAL_LABEL, suffix="s")
                    self.interval.classes("w-72").mark("config-interval")
                    self.heartbeat = ui.number(config_words.HEARTBEAT_LABEL, suffix="s")
                    self.heartbeat.classes("w-72").mark("config-heartbeat")
                    ui.button("Send to the station", on_click=self.save).mark("config-save")
                self.error = ui.label().classes("text-negative").mark("config-error")
            ui.separator()
            self.history = ConfigHistory(
                self.database, self.device_id, may_write=self.may_write, shown=self._rolled_back
            )
            self.history.build()
        self.show(snapshot, fill_form=True)
        client = ui.context.client
        background_tasks.create(self._learn_zone(client), name="ask the browser's time zone")

    async def _learn_zone(self, client: Any) -> None:
        zone = await ask_zone(client)
        if zone is not None and zone != self.zone and self.snapshot is not None:
            self.zone = zone
            with client:
                self.show(self.snapshot)

    async def reload(self, *, fill_form: bool = False) -> None:
        """Show the configuration as stored now."""
        async with self.database.session() as session:
            snapshot = await load(session, self.actor, self.device_id)
        self.show(snapshot, fill_form=fill_form)

    def show(self, snapshot: Snapshot, *, fill_form: bool = False) -> None:
        """Fill the card from ``snapshot``; the form too when asked (never under the typing)."""
        self.snapshot = snapshot
        self.desired.text = (
            f"Asked: version {snapshot.version}: {describe(snapshot.desired)}."
            if snapshot.version
            else "Nothing asked yet: the station runs its own settings."
        )
        self.reported.text = _reported(snapshot, self.zone)
        self.drift.text = drift_text(snapshot, self.zone)
        self.drift.classes(
            replace="text-warning" if snapshot.drift is not None else "text-positive"
        )
        self.shown_reported = snapshot.reported_version
        self.history.show(snapshot, self.zone)
        if fill_form and self.may_write:
            self.form_version = snapshot.version
            self.interval.value = snapshot.desired.get("interval_s")
            self.heartbeat.value = snapshot.desired.get("heartbeat_s")

    def _rolled_back(self, snapshot: Snapshot) -> None:
        """After a rollback (or its refusal) the form shows, and changes, the version asked."""
        self.show(snapshot, fill_form=True)

    def follow(self, reported_version: int | None) -> None:
        """Reload when the station's heartbeats name a version other than the one shown.

        At most once a second: the heartbeat may come before the report is stored.
        """
        if reported_version is None or reported_version == self.shown_reported:
            return
        if self._loading or time.monotonic() < self._next_reload:
            return
        self._loading, self._next_reload = True, time.monotonic() + RELOAD_EVERY_S
        background_tasks.create(self._reload_once(), name="reload device configuration")

    async def _reload_once(self) -> None:
        try:
            await self.reload()
        finally:
            self._loading = False

    async def save(self) -> None:
        """Store the form as a new version of the one it was filled from (then published)."""
        heartbeat = self.heartbeat.value
        problems = {
            self.interval: config_words.interval_problem(self.interval.value),
            self.heartbeat: config_words.heartbeat_problem(heartbeat),
        }
        for field, problem in problems.items():
            field.error = problem
        said = [problem for problem in problems.values() if problem]
        if said:  # checked here to say it in the form's words; the service checks again
            self.error.text = " ".join(said)
            return
        changes = {
            "interval_s": self.interval.value,
            # A whole number typed in a number field arrives as a float.
            "heartbeat_s": int(heartbeat)
            if heartbeat is not None and float(heartbeat).is_integer()
            else heartbeat,
        }
        edited = self.form_version

        async def work(session: AsyncSession, actor: Actor) -> tuple[Snapshot, bool]:
            try:
                await device_configs.update_desired(
                    session,
                    actor=actor,
                    device_id=self.device_id,
                    changes=changes,
                    expected_version=edited,
                )
                stale = False
            except ConflictError:  # nothing was written: reading on is safe
                stale = True
            return await load(session, actor, self.device_id), stale

        result = await submit(self.database, "config:write", work, {"": self.error})
        if result is None:
            return
        snapshot, stale = result
        if stale:
            self.show(snapshot)
            self.form_version = snapshot.version  # shown now: a second send replaces it
            self.error.text = _stale_message(snapshot, edited)
            return
        self.show(snapshot, fill_form=True)
        if snapshot.version != edited:
            ui.notify(f"Version {snapshot.version} sent to {self.device_id}")
        else:
            ui.notify("Nothing changed: these are the settings already asked", type="info")


def _stale_message(snapshot: Snapshot, edited: int) -> str:
    newest = snapshot.entries[0] if snapshot.entries else None
    who = f" by {newest.changed_by}" if newest and newest.version == snapshot.version else ""
    return (
        f"Not sent: you edited version {edited}, but version {snapshot.version}{who} was made "
        "meanwhile (shown above). Your values are still in the form: send again to replace it."
    )
