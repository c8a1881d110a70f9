"""/users: list, create, edit, disable and delete user accounts (``users:manage``)."""

from __future__ import annotations

from nicegui import ui
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.db.models import User
from core.services import roles, users
from core.services.actor import Actor
from webui.components.data_table import Column, DataTable
from webui.forms import allowed, submit, value
from webui.layout import frame, guard
from webui.services import Services


def register(services: Services) -> None:
    """Register /users."""

    @ui.page("/users")
    async def users_page() -> None:
        actor = await guard(services, "users:manage")
        if actor is None:
            return
        with frame(services, "Users", actor):
            await UsersView(services.database).build()


Listed = tuple[User, list[str]]  # a user and the names of their roles


class UsersView:
    """The user list with a create form and an edit dialog per user."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.role_names: list[str] = []

    async def build(self) -> None:
        """Lay out the create form and the table."""
        async with self.database.session() as session:
            self.role_names = [r.name for r in await roles.list_roles(session)]
        self._create_form()
        self.table: DataTable[Listed] = DataTable(
            [
                Column("username", "Username", self._name_cell, lambda r: r[0].username),
                Column(
                    "display",
                    "Display name",
                    lambda r: ui.label(r[0].display_name),
                    lambda r: r[0].display_name,
                ),
                Column(
                    "roles",
                    "Roles",
                    lambda r: ui.label(", ".join(r[1]) or "no role"),
                    lambda r: ", ".join(r[1]),
                ),
                Column("state", "State", self._state_cell, lambda r: not r[0].is_active),
                Column("edit", "", self._edit_cell),
            ],
            key=lambda r: r[0].username,
            search=lambda r: f"{r[0].username} {r[0].display_name} {' '.join(r[1])}",
            marker="users-table",
            row_marker=lambda r: f"user {r[0].username}",
            noun="users",
            sort="username",
        )
        await self.refresh()

    def _create_form(self) -> None:
        with ui.card().classes("w-full").mark("new-user"):
            ui.label("New user").classes("font-semibold")
            with ui.row().classes("w-full items-start"):
                username = ui.input("Username").classes("w-48").mark("new-username")
                display = ui.input("Display name").classes("w-56")
                password = ui.input("Password", password=True, password_toggle_button=True)
                password.classes("w-56").mark("new-password")
                chosen = ui.select(self.role_names, multiple=True, label="Roles", value=[])
                chosen.classes("min-w-56").mark("new-roles")

            async def create() -> None:
                async def work(session: AsyncSession, actor: Actor) -> User:
                    return await users.create_user(
                        session,
                        actor=actor,
                        username=value(username),
                        password=password.value,
                        display_name=value(display),
                        roles=list(chosen.value or []),
                    )

                fields = {"username": username, "password": password, "roles": chosen}
                created = await submit(
                    self.database,
                    "users:manage",
                    work,
                    fields,
                    done=f"User '{value(username)}' created",
                )
                if created is not None:
                    username.value = display.value = password.value = ""
                    chosen.value = []
                    await self.refresh()

            ui.button("Create user", icon="person_add", on_click=create)

    async def refresh(self) -> None:
        """Reload the table from the database, as the actor of now may see it."""

        async def work(session: AsyncSession, actor: Actor) -> list[Listed]:
            named = await users.role_names_by_user(session)
            return [(u, named.get(u.id, [])) for u in await users.list_users(session, actor=actor)]

        listed = await submit(self.database, "users:manage", work)
        if listed is not None:
            self.table.set_rows(listed)

    @staticmethod
    def _name_cell(row: Listed) -> None:
        ui.label(row[0].username).classes("font-mono")  # no page of its own: Edit opens it

    @staticmethod
    def _state_cell(row: Listed) -> None:
        active = row[0].is_active
        ui.badge("active" if active else "disabled").props(
            f"color={'positive' if active else 'grey'}"
        )

    def _edit_cell(self, row: Listed) -> None:
        user, role_list = row
        ui.button("Edit", icon="edit", on_click=lambda: self._edit(user, role_list)).props(
            "flat dense no-caps"
        ).mark(f"edit {user.username}")

    async def _edit(self, user: User, role_list: list[str]) -> None:
        if await allowed(self.database, "users:manage") is None:
            return
        with ui.dialog(value=True) as dialog, ui.card().classes("w-[28rem]").mark("edit-user"):
            ui.label(f"Edit {user.username}").classes("font-semibold")
            display = ui.input("Display name", value=user.display_name).classes("w-full")
            chosen = ui.select(self.role_names, multiple=True, label="Roles", value=role_list)
            chosen.classes("w-full").mark("edit-roles")
            active = ui.switch("Active (may sign in)", value=user.is_active).mark("edit-active")
            password = ui.input("New password", password=True, password_toggle_button=True)
            password.props('hint="Leave empty to keep the current password"')
            password.classes("w-full").mark("edit-password")

            async def save() -> None:
                async def work(session: AsyncSession, actor: Actor) -> User:
                    return await users.update_user(
                        session,
                        actor=actor,
                        user_id=user.id,
                        display_name=value(display),
                        roles=list(chosen.value or []),
                        is_active=bool(active.value),
                        password=password.value or None,
                    )

                fields = {"roles": chosen, "password": password}
                done = f"User '{user.username}' saved"
                if await submit(self.database, "users:manage", work, fields, done=done) is not None:
                    dialog.close()
                    await self.refresh()

            async def delete() -> None:
                async def work(session: AsyncSession, actor: Actor) -> bool:
                    await users.delete_user(session, actor=actor, user_id=user.id)
                    return True

                done = f"User '{user.username}' deleted"
                if await submit(self.database, "users:manage", work, done=done):
                    dialog.close()
                    await self.refresh()

            with ui.row():
                ui.button("Save", on_click=save).mark("save-user")
                ui.button("Delete", color="negative", on_click=delete).mark("delete-user")
                ui.button("Cancel", on_click=dialog.close).props("flat")
