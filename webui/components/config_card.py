"""The device page's configuration: what is asked of the station and what it runs.

People holding ``config:write`` also get a form for the sampling interval and heartbeat;
a change is a new version, published signed once it has committed. The station's side is
reloaded when its heartbeats name a version other than the one shown.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from nicegui import background_tasks, ui
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.db.models import DeviceConfig
from core.services import device_configs
from core.services.actor import Actor
from webui.components.values import when
from webui.forms import submit

RELOAD_EVERY_S = 1.0


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
    return "; ".join(parts) or "the station's own settings"


def _reported(version: int, settings: dict[str, Any], at: datetime | None) -> str:
    if not version:
        return "The station has not reported a configuration yet."
    return f"The station runs version {version} ({when(at)}): {describe(settings)}."


class ConfigCard:
    """Desired and reported configuration, and the form to change it."""

    def __init__(self, database: Database, actor: Actor, device_id: str) -> None:
        self.database = database
        self.actor = actor
        self.device_id = device_id
        self.shown_reported = 0
        self._loading = False
        self._next_reload = 0.0

    def build(self, config: DeviceConfig) -> None:
        """Lay the card out, showing ``config``."""
        with ui.card().classes("w-full"):
            ui.label("Configuration").classes("font-semibold")
            self.desired = ui.label().mark("config-desired")
            self.reported = ui.label().mark("config-reported")
            if self.actor.can("config:write"):
                with ui.row().classes("items-end gap-4"):
                    self.interval = ui.number("Seconds between samples")
                    self.interval.mark("config-interval")
                    self.heartbeat = ui.number("Seconds between heartbeats")
                    self.heartbeat.mark("config-heartbeat")
                    ui.button("Send to the station", on_click=self.save).mark("config-save")
                self.error = ui.label().classes("text-negative").mark("config-error")
        self.show(config, fill_form=True)

    async def reload(self, *, fill_form: bool = False) -> None:
        """Show the configuration as stored now."""
        async with self.database.session() as session:
            config = await device_configs.get(session, actor=self.actor, device_id=self.device_id)
            self.show(config, fill_form=fill_form)

    def show(self, config: DeviceConfig, *, fill_form: bool) -> None:
        """Fill the card from ``config``; the form too when asked (never under the typing)."""
        desired, version = dict(config.desired), config.desired_version
        reported, reported_version = dict(config.reported), config.reported_version
        self.desired.text = (
            f"Asked: version {version}: {describe(desired)}."
            if version
            else "Nothing asked yet: the station runs its own settings."
        )
        self.reported.text = _reported(reported_version, reported, config.reported_at)
        self.shown_reported = reported_version
        if fill_form and self.actor.can("config:write"):
            self.interval.value = desired.get("interval_s")
            self.heartbeat.value = desired.get("heartbeat_s")

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
        """Store the form as a new version (published to the station once committed)."""
        heartbeat = self.heartbeat.value
        changes = {
            "interval_s": self.interval.value,
            # A whole number typed in a number field arrives as a float.
            "heartbeat_s": int(heartbeat)
            if heartbeat is not None and float(heartbeat).is_integer()
            else heartbeat,
        }

        async def work(session: AsyncSession, actor: Actor) -> int:
            config = await device_configs.update_desired(
                session, actor=actor, device_id=self.device_id, changes=changes
            )
            return config.desired_version

        version = await submit(self.database, "config:write", work, {"": self.error})
        if version is None:
            return
        ui.notify(f"Version {version} sent to {self.device_id}")
        await self.reload(fill_form=True)
