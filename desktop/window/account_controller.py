"""The operator's own account: any signed-in person edits their display name and password.

The password change asks for the current password and the new one twice; the station
checks the current one (``local_users.change_own_password``) and the server accepts the
change as the person's own. Both edits go up to the server at once.
"""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from core.tasks import TaskSet
from desktop.agent import local_users
from desktop.agent.replica import Replica
from desktop.window.account_view import AccountView
from desktop.window.acting import Acting


class AccountController(QObject):
    """Opens the account dialog and makes its two changes."""

    def __init__(self, replica: Replica, acting: Acting, *, parent: QWidget) -> None:
        super().__init__(parent)
        self.replica = replica
        self.acting = acting
        self.tasks = TaskSet("station window account")
        self.view = AccountView(parent)
        self.view.save_name.clicked.connect(lambda: self.tasks.spawn(self.save_name()))
        self.view.change_password.clicked.connect(lambda: self.tasks.spawn(self.change_password()))

    async def open(self) -> None:
        """Show the dialog with the operator as the replica holds them now."""
        view = self.view
        person = await self.acting.run("Opening your account", None, lambda p: p, view.say)
        if person is None:
            return
        view.username.setText(person.username)
        view.display_name.setText(person.display_name)
        view.clear_passwords()
        view.say("")
        view.show()
        view.raise_()

    async def save_name(self) -> bool:
        """Save the display name typed; True if recorded."""
        name = self.view.display_name.text().strip()
        edit = await self.acting.edit(
            "Changing your display name",
            None,
            lambda person: local_users.edit_profile(self.replica, person, name),
            self.view.say,
        )
        if edit is None:
            return False
        said = f"Your display name is now {name}" if name else "Your display name is cleared"
        self.view.say(f"{said}: sent to the server.")
        return True

    async def change_password(self) -> bool:
        """Change the operator's password, the new one typed twice; True if recorded."""
        view = self.view
        current, new, again = view.current.text(), view.new.text(), view.again.text()
        if not current or not new:
            view.say("Type your current password and the new one twice.", error=True)
            return False
        if new != again:
            view.say("The two new passwords differ: type the new one twice.", error=True)
            return False
        session = self.acting.gate.session
        edit = await self.acting.edit(
            "Changing your password",
            None,
            lambda person: local_users.change_own_password(self.replica, person, current, new),
            view.say,
        )
        view.clear_passwords()
        if edit is None:
            return False
        if session is not None and session is self.acting.gate.session:
            session.changed_password(edit)  # later edits signed with the new password's key
        view.say("Password changed: it works here now, and on the server once it has it.")
        return True

    def close(self) -> None:
        """Hide the dialog and forget what was typed."""
        self.view.clear_passwords()
        self.view.close()
