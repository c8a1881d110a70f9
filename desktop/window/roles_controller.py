"""The Roles tab's behaviour: show each role and what it grants; edit a custom role's grants.

Built-in roles (Admin, Viewer) are the same on the server and every station and cannot be
changed anywhere, so they are shown read-only with why. A custom role's permissions are
changed with ``roles:manage``: the tab offers it to those who held it at the last reload,
and the change itself re-reads the operator at the moment of acting (``Acting``) and
applies ``local_users.set_role_permissions``' rules (only an Admin, no granting what one
lacks). The roles themselves are created, renamed and deleted in the browser.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from PySide6.QtCore import QObject

from core.rbac import PERMISSIONS
from core.tasks import TaskSet
from desktop.agent import local_users
from desktop.agent.directory import RoleRecord
from desktop.agent.replica import Replica
from desktop.window.acting import Acting, Say
from desktop.window.roles_view import RolesTab
from desktop.window.session import ROLES

# What editing a role's grants needs: local_users.set_role_permissions' permission, the
# same as the browser's Roles page.
BUILT_IN = " (built-in)"


def role_note(role: RoleRecord, *, may_edit: bool) -> str:
    """Why the role's permissions can or cannot be changed here, in a sentence or two."""
    if role.builtin:
        return (
            f"{role.name} is built in: it is the same on the server and on every station, so"
            " what it grants cannot be changed. For another set of permissions, create a"
            " custom role in the browser and give it to people here."
        )
    if not may_edit:
        return (
            f"Changing what a role grants needs the {ROLES} permission,"
            " which your roles do not give."
        )
    return (
        "Tick what this role grants and save: everyone holding it gets exactly these"
        " permissions, here at once and on the server once it accepts."
    )


class RolesController(QObject):
    """Binds the Roles tab to the replica, as the signed-in operator."""

    def __init__(
        self,
        replica: Replica,
        acting: Acting,
        tab: RolesTab,
        *,
        say: Say,
        reload: Callable[[], Awaitable[bool]],
        tasks: TaskSet,
    ) -> None:
        super().__init__(tab)
        self.replica = replica
        self.acting = acting
        self.tab = tab
        self._say = say
        self._reload = reload  # the whole dialog, after a change
        self.shown: list[RoleRecord] = []
        self.may_edit = False  # whether the operator held roles:manage at the last reload
        tab.roles.currentRowChanged.connect(lambda _: self._show_selected())
        tab.save.clicked.connect(lambda: tasks.spawn(self.save()))
        self._show_selected()

    @property
    def selected(self) -> RoleRecord | None:
        """The role selected in the list, if any."""
        row = self.tab.roles.currentRow()
        return self.shown[row] if 0 <= row < len(self.shown) else None

    def show(
        self, roles: Sequence[RoleRecord], permissions: Sequence[str], *, may_edit: bool
    ) -> None:
        """List these roles (the same one stays selected) over this permission catalogue."""
        tab, chosen = self.tab, self.selected
        self.may_edit = may_edit
        if list(permissions) != list(tab.permissions.boxes):
            tab.permissions.set_permissions(permissions, PERMISSIONS)
        self.shown = list(roles)
        tab.roles.blockSignals(True)  # one _show_selected below, not one per row
        tab.roles.clear()
        tab.roles.addItems([r.name + (BUILT_IN if r.builtin else "") for r in self.shown])
        again = next((n for n, r in enumerate(self.shown) if chosen and r.id == chosen.id), -1)
        tab.roles.setCurrentRow(again)
        tab.roles.blockSignals(False)
        self._show_selected()

    def _show_selected(self) -> None:
        tab, role = self.tab, self.selected
        if role is None:
            tab.name.setText("Select a role in the list.")
            tab.description.setText("")
            tab.note.setText("")
            tab.permissions.tick(())
            tab.permissions.set_editable(False)
            tab.save.setEnabled(False)
            return
        editable = self.may_edit and not role.builtin
        tab.name.setText(role.name + (BUILT_IN if role.builtin else ""))
        tab.description.setText(role.description or "No description.")
        tab.note.setText(role_note(role, may_edit=self.may_edit))
        tab.permissions.tick(role.permissions)
        tab.permissions.set_editable(editable)
        tab.save.setEnabled(editable)
        tab.save.setToolTip("" if editable else tab.note.text())

    async def save(self) -> bool:
        """Make the selected role grant exactly the ticked permissions; True if recorded."""
        role = self.selected
        if role is None:
            self._say("Select a role first.", error=True)
            return False
        wanted = self.tab.permissions.ticked()
        edit = await self.acting.edit(
            f"Changing what the role {role.name} grants",
            ROLES,
            lambda person: local_users.set_role_permissions(self.replica, person, role.id, wanted),
            self._say,
        )
        if edit is None:
            return False
        await self._reload()
        granted = ", ".join(sorted(wanted)) if wanted else "no permissions"
        self._say(f"{role.name} now grants {granted}: sent to the server.")
        return True
