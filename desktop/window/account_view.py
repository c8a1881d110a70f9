"""The operator's own account dialog: their display name and their password (layout only)."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.window.forms import left, say


def _secret(name: str) -> QLineEdit:
    field = QLineEdit()
    field.setObjectName(name)
    field.setEchoMode(QLineEdit.EchoMode.Password)
    return field


class AccountView(QDialog):
    """Display name, and a password change that asks for the current one first."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("account_dialog")
        self.setWindowTitle("My account")
        self.setMinimumWidth(460)
        self.username = QLabel()
        self.username.setObjectName("account_username")
        self.display_name = QLineEdit()
        self.display_name.setObjectName("display_name")
        self.save_name = QPushButton("Save name")
        self.save_name.setObjectName("save_name")
        profile = QGroupBox("Profile")
        profile_form = QFormLayout(profile)
        profile_form.addRow("Username", self.username)
        profile_form.addRow("Display name", self.display_name)
        profile_form.addRow("", left(self.save_name))

        self.current = _secret("current_password")
        self.new = _secret("new_password")
        self.again = _secret("new_password_again")
        self.change_password = QPushButton("Change password")
        self.change_password.setObjectName("change_password")
        password = QGroupBox("Password")
        password_form = QFormLayout(password)
        password_form.addRow("Current password", self.current)
        password_form.addRow("New password", self.new)
        password_form.addRow("New password again", self.again)
        password_form.addRow("", left(self.change_password))

        self.message = QLabel()
        self.message.setObjectName("account_message")
        self.message.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        column = QVBoxLayout(self)
        column.addWidget(profile)
        column.addWidget(password)
        column.addWidget(self.message)
        column.addWidget(buttons)

    def say(self, text: str, *, error: bool = False) -> None:
        """Show how the last change went."""
        say(self.message, text, error=error)

    def clear_passwords(self) -> None:
        """Empty the three password fields."""
        for field in (self.current, self.new, self.again):
            field.clear()
