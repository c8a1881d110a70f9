"""The signed-in operator's strip: who they are, what they may do, and what happened."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from core.protocol.station_config import MAX_INTERVAL_S, MIN_INTERVAL_S
from desktop.window.appearance import set_tone
from desktop.window.forms import say
from desktop.window.session import REPLAY, SETTINGS, USERS
from desktop.window.theme import Tone


def _button(name: str, text: str) -> QPushButton:
    button = QPushButton(text)
    button.setObjectName(name)
    return button


class OperatorBar(QFrame):
    """Who is signed in, their actions (enabled by their permissions) and the last outcome."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("operator_bar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.who = QLabel()
        self.who.setObjectName("operator")
        self.who.setTextFormat(Qt.TextFormat.PlainText)
        font = self.who.font()
        font.setBold(True)
        self.who.setFont(font)
        self.roles = QLabel()
        self.roles.setObjectName("operator_roles")
        self.idle_note = QLabel()
        self.idle_note.setObjectName("idle_note")
        set_tone(self.idle_note, Tone.NEUTRAL)
        self.account = _button("account", "My account…")
        self.sign_out = _button("sign_out", "Sign out")

        self.replay_now = _button("replay_now", "Replay outbox now")
        self.interval = QDoubleSpinBox()
        self.interval.setObjectName("interval")
        self.interval.setRange(MIN_INTERVAL_S, MAX_INTERVAL_S)
        self.interval.setDecimals(2)
        self.interval.setSuffix(" s")
        self.set_interval = _button("set_interval", "Set interval")
        self.users = _button("users", "Users…")
        self.message = QLabel()
        self.message.setObjectName("operator_message")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        # Each guarded control and the permission it needs: greyed out, it says which.
        self.guarded: dict[QWidget, str] = {
            self.replay_now: REPLAY,
            self.interval: SETTINGS,
            self.set_interval: SETTINGS,
            self.users: USERS,
        }
        self.permissions: frozenset[str] = frozenset()  # as the last check found them
        self._held: set[QWidget] = set()  # busy with an action: stays disabled until released

        top = QHBoxLayout()
        top.addWidget(QLabel("Signed in:"))
        top.addWidget(self.who)
        top.addWidget(self.roles)
        top.addStretch(1)
        top.addWidget(self.idle_note)
        top.addWidget(self.account)
        top.addWidget(self.sign_out)
        actions = QHBoxLayout()
        actions.addWidget(self.replay_now)
        actions.addSpacing(12)
        actions.addWidget(QLabel("Sampling interval"))
        actions.addWidget(self.interval)
        actions.addWidget(self.set_interval)
        actions.addSpacing(12)
        actions.addWidget(self.users)
        actions.addSpacing(12)
        actions.addWidget(self.message, 1)
        grid = QGridLayout(self)
        grid.setContentsMargins(10, 6, 10, 6)
        grid.addLayout(top, 0, 0)
        grid.addLayout(actions, 1, 0)

    def show_person(self, display_name: str, username: str, roles: tuple[str, ...]) -> None:
        """Name the signed-in person and their roles."""
        self.who.setText(f"{display_name} ({username})" if display_name else username)
        self.roles.setText("— " + (", ".join(roles) if roles else "no roles"))

    def allow(self, permissions: frozenset[str]) -> None:
        """Enable what the permissions allow; a greyed-out control says what it needs."""
        self.permissions = permissions
        for widget, permission in self.guarded.items():
            allowed = permission in permissions
            widget.setEnabled(allowed and widget not in self._held)
            widget.setToolTip("" if allowed else f"needs the {permission} permission")

    def hold(self, widget: QWidget) -> None:
        """Disable ``widget`` while its action runs."""
        self._held.add(widget)
        widget.setEnabled(False)

    def release(self, widget: QWidget) -> None:
        """Its action ended: enabled again if the permissions allow."""
        self._held.discard(widget)
        self.allow(self.permissions)

    def say(self, text: str, *, error: bool = False, busy: bool = False) -> None:
        """Show what the last action did, or why it did not (``busy``: still under way)."""
        say(self.message, text, error=error, busy=busy)
