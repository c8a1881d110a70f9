"""/roles: built-in and custom roles and their permissions (``roles:manage``)."""

from __future__ import annotations

from nicegui import ui
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.db.models import Role
from core.rbac import PERMISSIONS
from core.services import roles
from core.services.actor import Actor
from webui.forms import allowed, submit, value
from webui.layout import frame, guard
from webui.services import Services


def register(services: Services) -> None:
    """Register /roles."""

    @ui.page("/roles")
    async def roles_page() -> None:
        actor = await guard(services, "roles:manage")
        if actor is None:
            return
        with frame(services, "Roles", actor):
            await RolesView(services.database).build()


class RolesView:
    """The role list with a create form; custom roles can be edited and deleted."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def build(self) -> None:
        """Lay out the create form and the list."""
        with ui.card().classes("w-full").mark("new-role"):
            ui.label("New role").classes("font-semibold")
            name = ui.input("Name").mark("new-role-name")
            description = ui.input("Description").classes("w-96")
            granted = self._permission_picker([]).mark("new-role-permissions")

            async def create() -> None:
                async def work(session: AsyncSession, actor: Actor) -> Role:
                    return await roles.create_role(
                        session,
                        actor=actor,
                        name=value(name),
                        description=value(description),
                        permissions=list(granted.value or []),
                    )

                fields = {"name": name, "permissions": granted}
                done = f"Role '{value(name)}' created"
                if await submit(self.database, "roles:manage", work, fields, done=done):
                    name.value = description.value = ""
                    granted.value = []
                    await self.refresh()

            ui.button("Create role", icon="add", on_click=create)
        self.listing = ui.column().classes("w-full gap-1")
        await self.refresh()

    @staticmethod
    def _permission_picker(current: list[str]) -> ui.select:
        options = {name: f"{name} — {text}" for name, text in PERMISSIONS.items()}
        return ui.select(options, multiple=True, label="Permissions", value=current).classes(
            "w-full"
        )

    async def refresh(self) -> None:
        """Reload the list from the database, if the actor of now may see it."""

        async def work(session: AsyncSession, actor: Actor) -> list[tuple[Role, list[str]]]:
            return [
                (r, await roles.permissions_of(session, r.id))
                for r in await roles.list_roles(session)
            ]

        listed = await submit(self.database, "roles:manage", work)
        if listed is None:
            return
        self.listing.clear()
        with self.listing:
            for role, granted in listed:
                with (
                    ui.row().classes("w-full items-center border-b py-1").mark(f"role {role.name}")
                ):
                    ui.label(role.name).classes("w-40 font-semibold")
                    if role.builtin:
                        ui.badge("built-in").props("color=grey")
                    ui.label(", ".join(granted) or "no permissions").classes("grow text-sm")
                    if not role.builtin:
                        ui.button(
                            "Edit", on_click=lambda r=role, g=granted: self._edit(r, g)
                        ).props("flat").mark(f"edit {role.name}")

    async def _edit(self, role: Role, granted: list[str]) -> None:
        if await allowed(self.database, "roles:manage") is None:
            return
        with ui.dialog(value=True) as dialog, ui.card().classes("w-[36rem]").mark("edit-role"):
            ui.label(f"Edit role {role.name}").classes("font-semibold")
            name = ui.input("Name", value=role.name)
            description = ui.input("Description", value=role.description).classes("w-full")
            picker = self._permission_picker(granted).mark("edit-role-permissions")

            async def save() -> None:
                async def work(session: AsyncSession, actor: Actor) -> Role:
                    return await roles.update_role(
                        session,
                        actor=actor,
                        role_id=role.id,
                        name=value(name),
                        description=value(description),
                        permissions=list(picker.value or []),
                    )

                fields = {"name": name, "permissions": picker}
                done = f"Role '{value(name)}' saved"
                if await submit(self.database, "roles:manage", work, fields, done=done):
                    dialog.close()
                    await self.refresh()

            async def delete() -> None:
                async def work(session: AsyncSession, actor: Actor) -> bool:
                    await roles.delete_role(session, actor=actor, role_id=role.id)
                    return True

                done = f"Role '{role.name}' deleted"
                if await submit(self.database, "roles:manage", work, done=done):
                    dialog.close()
                    await self.refresh()

            with ui.row():
                ui.button("Save", on_click=save).mark("save-role")
                ui.button("Delete", color="negative", on_click=delete).mark("delete-role")
                ui.button("Cancel", on_click=dialog.close).props("flat")
