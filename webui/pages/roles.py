"""/roles: built-in and custom roles and their permissions (``roles:manage``)."""

from __future__ import annotations

from nicegui import ui
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.db.models import Role
from core.rbac import PERMISSIONS
from core.services import roles
from core.services.actor import Actor
from webui.components.data_table import Column, DataTable
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


Listed = tuple[Role, list[str]]  # a role and the names of the permissions it grants


class RolesView:
    """The role list with a create form; custom roles can be edited and deleted."""

    def __init__(self, database: Database) -> None:
        self.database = database

    async def build(self) -> None:
        """Lay out the create form and the list."""
        with ui.card().classes("w-full").mark("new-role"):
            ui.label("New role").classes("font-semibold")
            with ui.row().classes("w-full items-start"):
                name = ui.input("Name").classes("w-56").mark("new-role-name")
                description = ui.input("Description (optional)").classes("w-96")
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
        self.table: DataTable[Listed] = DataTable(
            [
                Column("name", "Role", self._name_cell, lambda r: r[0].name),
                Column(
                    "kind",
                    "Kind",
                    lambda r: ui.label("built-in" if r[0].builtin else "custom"),
                    lambda r: not r[0].builtin,
                ),
                Column(
                    "description",
                    "Description",
                    lambda r: ui.label(r[0].description or "—"),
                    lambda r: r[0].description,
                ),
                Column(
                    "permissions",
                    "Permissions",
                    lambda r: ui.label(", ".join(r[1]) or "no permissions").classes("text-sm"),
                    lambda r: len(r[1]),
                ),
                Column("edit", "", self._edit_cell),
            ],
            key=lambda r: r[0].name,
            search=lambda r: f"{r[0].name} {r[0].description} {' '.join(r[1])}",
            marker="roles-table",
            row_marker=lambda r: f"role {r[0].name}",
            noun="roles",
        )
        await self.refresh()

    @staticmethod
    def _permission_picker(current: list[str]) -> ui.select:
        options = {name: f"{name} — {text}" for name, text in PERMISSIONS.items()}
        return ui.select(options, multiple=True, label="Permissions", value=current).classes(
            "w-full"
        )

    async def refresh(self) -> None:
        """Reload the table from the database, if the actor of now may see it."""

        async def work(session: AsyncSession, actor: Actor) -> list[Listed]:
            granted = await roles.permissions_by_role(session)
            return [(r, granted.get(r.id, [])) for r in await roles.list_roles(session)]

        listed = await submit(self.database, "roles:manage", work)
        if listed is not None:
            self.table.set_rows(listed)

    @staticmethod
    def _name_cell(row: Listed) -> None:
        ui.label(row[0].name).classes("font-semibold")

    def _edit_cell(self, row: Listed) -> None:
        role, granted = row
        if role.builtin:
            return  # built-in roles are what they are
        ui.button("Edit", icon="edit", on_click=lambda: self._edit(role, granted)).props(
            "flat dense no-caps"
        ).mark(f"edit {role.name}")

    async def _edit(self, role: Role, granted: list[str]) -> None:
        if await allowed(self.database, "roles:manage") is None:
            return
        with ui.dialog(value=True) as dialog, ui.card().classes("w-[36rem]").mark("edit-role"):
            ui.label(f"Edit role {role.name}").classes("font-semibold")
            name = ui.input("Name", value=role.name).classes("w-full")
            description = ui.input("Description (optional)", value=role.description)
            description.classes("w-full")
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
