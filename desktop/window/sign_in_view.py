"""The sign-in page's layout: username, password, the button and the reason of a refusal."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QLabel,
    QLayout,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.window.appearance import set_tone
from desktop.window.theme import Tone

TEXT_WIDTH = 372  # pixels of wrapped text: a comfortable form in the middle of a large window


class SignInView(QWidget):
    """A centred form; the station goes on sampling behind it."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("sign_in")
        heading = QLabel("Sign in to operate this station")
        heading.setObjectName("sign_in_heading")
        font = heading.font()
        font.setPointSize(font.pointSize() + 3)
        font.setBold(True)
        heading.setFont(font)
        note = QLabel(
            "Use your PrecisionPulse account. It is checked on this station, so signing in"
            " works without the server; the station keeps sampling while nobody is signed in."
        )
        note.setWordWrap(True)
        note.setFixedWidth(TEXT_WIDTH)  # the box's width: its fields and messages follow it

        self.username = QLineEdit()
        self.username.setObjectName("username")
        self.password = QLineEdit()
        self.password.setObjectName("password")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.submit = QPushButton("Sign in")
        self.submit.setObjectName("sign_in_button")
        self.submit.setDefault(True)
        self.message = QLabel()
        self.message.setObjectName("sign_in_message")
        self.message.setWordWrap(True)
        self.message.setFixedWidth(TEXT_WIDTH)
        form = QFormLayout()
        form.addRow("Username", self.username)
        form.addRow("Password", self.password)
        form.addRow("", self.submit)

        box = QFrame()
        box.setObjectName("sign_in_box")
        box.setFrameShape(QFrame.Shape.StyledPanel)
        column = QVBoxLayout(box)
        column.setContentsMargins(24, 20, 24, 20)
        column.addWidget(heading)
        column.addWidget(note)
        column.addLayout(form)
        column.addWidget(self.message)

        # Word-wrapped text makes the page's layout size the box by its height for its width,
        # which squeezed the fields: the box takes its full height, growing with a refusal.
        column.setSizeConstraint(QLayout.SizeConstraint.SetFixedSize)
        page = QVBoxLayout(self)
        page.addStretch(1)
        page.addWidget(box, 0, Qt.AlignmentFlag.AlignHCenter)
        page.addStretch(2)

    def show_refusal(self, reason: str) -> None:
        """Say why the sign-in was refused; the password is cleared for the next try."""
        set_tone(self.message, Tone.BAD)
        self.message.setText(reason)
        self.password.clear()
        self.password.setFocus()

    def set_busy(self, busy: bool) -> None:
        """While a sign-in is checked, the form waits (and says so)."""
        for widget in (self.username, self.password, self.submit):
            widget.setEnabled(not busy)
        if busy:
            self.message.setText("")
            self.submit.setText("Checking…")
        else:
            self.submit.setText("Sign in")

    def reset(self, message: str = "") -> None:
        """An empty form, with why the last session ended if it did not end by choice."""
        self.username.clear()
        self.password.clear()
        set_tone(self.message, Tone.NEUTRAL)
        self.message.setText(message)
        self.username.setFocus()
