"""Managing people at the station (``users:manage``): list, create, enable or disable, give
roles, delete (after a question naming them; never oneself); and, in the Roles tab
(``roles:manage``), what each custom role grants (``RolesController``).

Every step re-reads the operator from the replica (``Acting``), listing included: someone
who lost ``users:manage`` since the dialog opened sees the refusal, not the change. The
edits are ``local_users``' (which also applies the server's rules: only an Admin changes
accounts at a station, nobody grants what they lack, an active Admin always remains), and
each goes up to the server at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence

from PySide6.QtCore import QItemSelection, QObject
from PySide6.QtWidgets import QWidget

from core.protocol.sync import Edit
from core.tasks import TaskSet
from desktop.agent import local_users
from desktop.agent.directory import PersonRecord, RoleRecord
from desktop.agent.replica import Replica
from desktop.agent.sign_in import Person
from desktop.window.acting import Acting, Say
from desktop.window.confirm import Question
from desktop.window.roles_controller import RolesController
from desktop.window.session import ROLES, USERS
from desktop.window.users_model import UserRow, user_rows
from desktop.window.users_view import UsersView


class UsersController(QObject):
    """Opens the users dialog and makes its changes."""

    def __init__(self, replica: Replica, acting: Acting, *, parent: QWidget) -> None:
        super().__init__(parent)
        self.replica = replica
        self.acting = acting
        self.tasks = TaskSet("station window users")
        self.view = view = UsersView(parent)
        self.question = Question(view)
        self.roles = RolesController(
            replica,
            acting,
            view.roles_tab,
            say=view.say,
            reload=lambda: self.reload(view.say),
            tasks=self.tasks,
        )
        self.selected: UserRow | None = None
        self.me: uuid.UUID | None = None  # the operator, as of the last reload
        view.table.selectionModel().selectionChanged.connect(self._on_select)
        view.toggle_active.clicked.connect(lambda: self.tasks.spawn(self.toggle_active()))
        view.delete_user.clicked.connect(lambda: self.tasks.spawn(self.delete()))
        view.set_roles.clicked.connect(lambda: self.tasks.spawn(self.set_roles()))
        view.create_user.clicked.connect(lambda: self.tasks.spawn(self.create()))
        self._show_selected(None)

    async def open(self, say: Say) -> bool:
        """Show the dialog if the operator may manage users; else ``say`` why not."""
        if not await self.reload(say):
            return False
        self.view.say("")
        self.view.show()
        self.view.raise_()
        return True

    async def reload(self, say: Say) -> bool:
        """Read the people and roles again; False (said) if the operator may not."""

        def read(person: Person) -> tuple[Person, list[PersonRecord], list[RoleRecord], list[str]]:
            replica = self.replica
            return person, replica.people(), replica.roles(), replica.permission_names()

        got = await self.acting.run("Listing the users", USERS, read, say)
        if got is None:
            return False
        me, people, roles, permissions = got
        self.me = me.user_id
        self.roles.show(roles, permissions, may_edit=me.may(ROLES))
        chosen = self.selected.user_id if self.selected else None
        names = [role.name for role in roles]
        if names != list(self.view.roles.boxes):
            self.view.roles.set_roles(names)
            self.view.new_roles.set_roles(names)
        self.view.model.set_rows(user_rows(people))
        rows = self.view.model.rows
        again = next((n for n, row in enumerate(rows) if row.user_id == chosen), None)
        if again is None:
            self._show_selected(None)
        else:
            self.view.table.selectRow(again)
            self._show_selected(rows[again])
        return True

    def _on_select(self, selected: QItemSelection, deselected: QItemSelection) -> None:
        rows = self.view.table.selectionModel().selectedRows()
        self._show_selected(self.view.model.row(rows[0].row()) if rows else None)

    def _show_selected(self, row: UserRow | None) -> None:
        view, self.selected = self.view, row
        for widget in (view.toggle_active, view.set_roles, view.roles):
            widget.setEnabled(row is not None)
        yourself = row is not None and row.user_id == self.me
        view.delete_user.setEnabled(row is not None and not yourself)
        view.delete_user.setToolTip(SELF_DELETE if yourself else "")
        if row is None:
            view.selected.setText("Select a person in the list.")
            view.roles.tick(())
            return
        view.selected.setText(f"{row.display_name or row.username} ({row.username})")
        view.toggle_active.setText("Disable" if row.active else "Enable")
        view.roles.tick(row.roles)

    async def _edit(self, doing: str, work: Callable[[Person], Edit], done: str) -> bool:
        edit = await self.acting.edit(doing, USERS, work, self.view.say)
        if edit is None:
            return False
        await self.reload(self.view.say)
        self.view.say(f"{done}: sent to the server.")
        return True

    async def toggle_active(self) -> bool:
        """Disable the selected person, or enable them again."""
        row = self.selected
        if row is None:
            self.view.say("Select a person first.", error=True)
            return False
        active = not row.active
        return await self._edit(
            f"{'Enabling' if active else 'Disabling'} {row.username}",
            lambda person: local_users.set_active(self.replica, person, row.user_id, active),
            f"{row.username} {'enabled' if active else 'disabled'}",
        )

    async def set_roles(self) -> bool:
        """Give the selected person exactly the ticked roles."""
        row = self.selected
        if row is None:
            self.view.say("Select a person first.", error=True)
            return False
        roles = self.view.roles.ticked()
        return await self._edit(
            f"Setting {row.username}'s roles",
            lambda person: local_users.set_roles(self.replica, person, row.user_id, roles),
            f"{row.username} now has {_listed(roles)}",
        )

    async def delete(self) -> bool:
        """Delete the selected person, once the operator confirmed it naming them."""
        row = self.selected
        if row is None:
            self.view.say("Select a person first.", error=True)
            return False
        name = f"{row.display_name} ({row.username})" if row.display_name else row.username
        asked = await self.question.ask(
            "Delete a person",
            f"Delete {name}?",
            action=f"Delete {row.username}",
            detail=(
                f"{row.username} can no longer sign in here, and anywhere else once the"
                " server has the change. Deleting cannot be undone from a station."
            ),
        )
        if not asked:
            self.view.say(f"{row.username} was not deleted.")
            return False

        def work(person: Person) -> Edit:
            if person.user_id == row.user_id:
                raise ValueError(SELF_DELETE)
            return local_users.delete_user(self.replica, person, row.user_id)

        return await self._edit(f"Deleting {row.username}", work, f"{row.username} deleted")

    async def create(self) -> bool:
        """Create the person the form describes."""
        view = self.view
        username = view.new_username.text().strip()
        password, again = view.new_password.text(), view.new_password_again.text()
        if not username or not password:
            view.say("A new person needs a username and a password.", error=True)
            return False
        if password != again:
            view.say("The two passwords differ: type the password twice.", error=True)
            return False
        name, roles = view.new_display_name.text().strip(), view.new_roles.ticked()
        created = await self._edit(
            f"Creating {username}",
            lambda person: local_users.create_user(
                self.replica, person, username, password, name, roles
            ),
            f"{username} created with {_listed(roles)}",
        )
        if created:
            view.clear_new()
        return created

    def close(self) -> None:
        """Hide the dialog (and a question it asks) and forget what was typed."""
        self.question.dismiss()
        self.view.clear_new()
        self.view.close()


SELF_DELETE = "you cannot delete your own account: another Admin can"


def _listed(roles: Sequence[str]) -> str:
    if not roles:
        return "no roles"
    return f"the role{'s' if len(roles) > 1 else ''} {', '.join(roles)}"
