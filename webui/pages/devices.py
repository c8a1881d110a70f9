"""/devices: registered stations; register and disable with ``devices:write``."""

from __future__ import annotations

from nicegui import ui
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.db.models import Device
from core.services import devices
from core.services.actor import Actor
from webui.components.browser_time import known_zone, named
from webui.components.data_table import Column, DataTable
from webui.components.secret import one_time_secret
from webui.forms import submit, value
from webui.layout import frame, guard
from webui.services import Services


def register(services: Services) -> None:
    """Register /devices."""

    @ui.page("/devices")
    async def devices_page() -> None:
        actor = await guard(services, "devices:read")
        if actor is None:
            return
        with frame(services, "Devices", actor):
            await DevicesView(services.database, actor).build()


class DevicesView:
    """The device table; writers also get a register form and enable switches."""

    def __init__(self, database: Database, actor: Actor) -> None:
        self.database = database
        self.actor = actor
        self.zone = known_zone()

    async def build(self) -> None:
        """Lay out the form (if allowed) and the table."""
        if self.actor.can("devices:write"):
            self._create_form()
        self.table: DataTable[Device] = DataTable(
            [
                Column("id", "Device", self._id_cell, lambda d: d.id),
                Column("name", "Name", lambda d: ui.label(d.name), lambda d: d.name),
                Column(
                    "seen",
                    "Last seen",
                    lambda d: ui.label(named(d.last_seen_at, self.zone)),
                    lambda d: d.last_seen_at,
                ),
                Column("enabled", "Enabled", self._enabled_cell, lambda d: not d.enabled),
            ],
            key=lambda d: d.id,
            search=lambda d: f"{d.id} {d.name} {d.description}",
            marker="devices-table",
            row_marker=lambda d: f"device {d.id}",
            noun="devices",
            empty="No devices registered yet.",
            sort="id",
        )
        await self.refresh()

    def _create_form(self) -> None:
        with ui.card().classes("w-full").mark("new-device"):
            ui.label("Register a device").classes("font-semibold")
            with ui.row().classes("items-start"):
                device_id = ui.input("Device id", placeholder="press-07").classes("w-80")
                device_id.props('hint="Letters, digits, - and _; also its MQTT username"')
                device_id.mark("new-device-id")
                name = ui.input("Name (optional)", placeholder="Press 7, hall B").classes("w-64")

            async def create() -> None:
                async def work(session: AsyncSession, actor: Actor) -> devices.DeviceCredentials:
                    return await devices.create_device(
                        session, actor=actor, device_id=value(device_id), name=value(name)
                    )

                created = await submit(self.database, "devices:write", work, {"id": device_id})
                if created is not None:
                    device_id.value = name.value = ""
                    self._show_credentials(created)
                    await self.refresh()

            ui.button("Register", icon="add", on_click=create).mark("register-device")

    @staticmethod
    def _show_credentials(created: devices.DeviceCredentials) -> None:
        # Persistent: closed by Done only, since the password is not shown again.
        with (
            ui.dialog(value=True).props("persistent") as dialog,
            ui.card().classes("w-[32rem]").mark("device-credentials"),
        ):
            ui.label(f"Device '{created.username}' registered").classes("font-semibold")
            ui.label(
                "The station signs in to the broker with these. The password is shown only"
                " now: copy it into the station's settings before you close this."
            )
            one_time_secret("Username", created.username, "device-username")
            one_time_secret("Password", created.password, "device-password")
            ui.button("Done", on_click=dialog.close).mark("credentials-done")

    async def refresh(self) -> None:
        """Reload the table from the database, as the actor of now may see it."""

        async def work(session: AsyncSession, actor: Actor) -> list[Device]:
            return await devices.list_devices(session, actor=actor)

        listed = await submit(self.database, "devices:read", work)
        if listed is not None:
            self.table.set_rows(listed)

    @staticmethod
    def _id_cell(device: Device) -> None:
        ui.link(device.id, f"/devices/{device.id}").classes("font-mono")

    def _enabled_cell(self, device: Device) -> None:
        if not self.actor.can("devices:write"):
            ui.badge("enabled" if device.enabled else "disabled").props(
                f"color={'positive' if device.enabled else 'grey'}"
            )
            return
        stored = {"enabled": device.enabled}

        async def toggle(event: object) -> None:
            enabled = bool(getattr(event, "value", False))
            if enabled == stored["enabled"]:
                return  # the switch put back after a refusal

            async def work(session: AsyncSession, actor: Actor) -> Device:
                return await devices.update_device(
                    session, actor=actor, device_id=device.id, enabled=enabled
                )

            done = f"{device.id} {'enabled' if enabled else 'disabled'}"
            if await submit(self.database, "devices:write", work, done=done) is None:
                switch.value = stored["enabled"]  # nothing changed: show so
            else:
                stored["enabled"] = enabled
                device.enabled = enabled  # the row's data, for sorting, until the next refresh

        switch = ui.switch(value=device.enabled, on_change=toggle)
        switch.props(f'dense aria-label="{device.id} enabled"').mark(f"enabled {device.id}")
