"""/devices: registered stations; register and disable with ``devices:write``."""

from __future__ import annotations

from nicegui import ui
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.db.models import Device
from core.services import devices
from core.services.actor import Actor
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
    """The device list; writers also get a register form and enable switches."""

    def __init__(self, database: Database, actor: Actor) -> None:
        self.database = database
        self.actor = actor

    async def build(self) -> None:
        """Lay out the form (if allowed) and the list."""
        if self.actor.can("devices:write"):
            self._create_form()
        self.listing = ui.column().classes("w-full gap-1")
        await self.refresh()

    def _create_form(self) -> None:
        with ui.card().classes("w-full").mark("new-device"):
            ui.label("Register a device").classes("font-semibold")
            with ui.row():
                device_id = ui.input("Device id").mark("new-device-id")
                name = ui.input("Name")

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
        with ui.dialog(value=True) as dialog, ui.card().mark("device-credentials"):
            ui.label(f"Device '{created.username}' registered").classes("font-semibold")
            ui.label("MQTT credentials — the password is shown only now; store it on the station.")
            ui.label(f"username: {created.username}").classes("font-mono")
            ui.label(f"password: {created.password}").classes("font-mono").mark("device-password")
            ui.button("Done", on_click=dialog.close)

    async def refresh(self) -> None:
        """Reload the list from the database, as the actor of now may see it."""

        async def work(session: AsyncSession, actor: Actor) -> list[Device]:
            return await devices.list_devices(session, actor=actor)

        listed = await submit(self.database, "devices:read", work)
        if listed is None:
            return
        self.listing.clear()
        with self.listing:
            if not listed:
                ui.label("No devices registered yet.")
            for device in listed:
                self._row(device)

    def _row(self, device: Device) -> None:
        with ui.row().classes("w-full items-center border-b py-1").mark(f"device {device.id}"):
            ui.label(device.id).classes("w-40 font-mono")
            ui.label(device.name).classes("w-48")
            if self.actor.can("devices:write"):
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

                switch = ui.switch("enabled", value=device.enabled, on_change=toggle)
                switch.mark(f"enabled {device.id}")
            else:
                ui.badge("enabled" if device.enabled else "disabled")
