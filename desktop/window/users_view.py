"""The local users dialog's layout: a People tab (the people, the selected one's switches and
deletion, a new one's form) and a Roles tab (what each role grants)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.window.forms import left, say
from desktop.window.roles_view import RolesTab
from desktop.window.users_model import UsersModel


class RoleChecks(QWidget):
    """One check box per role, in a row."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.setObjectName(name)
        self._row = QHBoxLayout(self)
        self._row.setContentsMargins(0, 0, 0, 0)
        self.boxes: dict[str, QCheckBox] = {}

    def set_roles(self, names: Sequence[str]) -> None:
        """Offer these roles, none ticked."""
        for box in self.boxes.values():
            self._row.removeWidget(box)
            box.deleteLater()
        self.boxes = {name: QCheckBox(name) for name in names}
        for box in self.boxes.values():
            self._row.addWidget(box)
        self._row.addStretch(1)

    def tick(self, names: Sequence[str]) -> None:
        """Tick exactly these roles."""
        for name, box in self.boxes.items():
            box.setChecked(name in names)

    def ticked(self) -> list[str]:
        """The ticked roles' names."""
        return [name for name, box in self.boxes.items() if box.isChecked()]


class UsersView(QDialog):
    """People on this station's replica, and what a user manager may change here."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("users_dialog")
        self.setWindowTitle("Users on this station")
        self.resize(760, 660)
        note = QLabel(
            "Changes made here go to the server, which has the last word: until it answers,"
            " they hold on this station only."
        )
        note.setWordWrap(True)
        self.model = UsersModel(self)
        self.table = QTableView()
        self.table.setObjectName("users_table")
        self.table.setModel(self.model)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)

        self.selected = QLabel("Select a person in the list.")
        self.selected.setObjectName("selected_user")
        self.toggle_active = QPushButton("Disable")
        self.toggle_active.setObjectName("toggle_active")
        self.delete_user = QPushButton("Delete…")
        self.delete_user.setObjectName("delete_user")
        account = QWidget()
        account_row = QHBoxLayout(account)
        account_row.setContentsMargins(0, 0, 0, 0)
        account_row.addWidget(self.toggle_active)
        account_row.addWidget(self.delete_user)
        account_row.addStretch(1)
        self.roles = RoleChecks("selected_roles")
        self.set_roles = QPushButton("Set roles")
        self.set_roles.setObjectName("set_roles")
        chosen = QGroupBox("Selected person")
        chosen_form = QFormLayout(chosen)
        chosen_form.addRow("Person", self.selected)
        chosen_form.addRow("Account", account)
        chosen_form.addRow("Roles", self.roles)
        chosen_form.addRow("", left(self.set_roles))

        self.new_username = QLineEdit()
        self.new_username.setObjectName("new_username")
        self.new_display_name = QLineEdit()
        self.new_display_name.setObjectName("new_display_name")
        self.new_password = QLineEdit()
        self.new_password.setObjectName("new_user_password")
        self.new_password.setEchoMode(QLineEdit.EchoMode.Password)
        self.new_password_again = QLineEdit()
        self.new_password_again.setObjectName("new_user_password_again")
        self.new_password_again.setEchoMode(QLineEdit.EchoMode.Password)
        self.new_roles = RoleChecks("new_roles")
        self.create_user = QPushButton("Create")
        self.create_user.setObjectName("create_user")
        new = QGroupBox("New person")
        new_form = QFormLayout(new)
        new_form.addRow("Username", self.new_username)
        new_form.addRow("Display name", self.new_display_name)
        new_form.addRow("Password", self.new_password)
        new_form.addRow("Password again", self.new_password_again)
        new_form.addRow("Roles", self.new_roles)
        new_form.addRow("", left(self.create_user))

        people = QWidget()
        people.setObjectName("people_tab")
        people_column = QVBoxLayout(people)
        people_column.addWidget(self.table, 1)
        people_column.addWidget(chosen)
        people_column.addWidget(new)
        self.roles_tab = RolesTab()
        self.tabs = QTabWidget()
        self.tabs.setObjectName("users_tabs")
        self.tabs.addTab(people, "People")
        self.tabs.addTab(self.roles_tab, "Roles")

        self.message = QLabel()
        self.message.setObjectName("users_message")
        self.message.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        column = QVBoxLayout(self)
        column.addWidget(note)
        column.addWidget(self.tabs, 1)
        column.addWidget(self.message)
        column.addWidget(buttons)

    def say(self, text: str, *, error: bool = False) -> None:
        """Show how the last change went."""
        say(self.message, text, error=error)

    def clear_new(self) -> None:
        """Empty the new person's form."""
        for field in (
            self.new_username,
            self.new_display_name,
            self.new_password,
            self.new_password_again,
        ):
            field.clear()
        self.new_roles.tick(())
