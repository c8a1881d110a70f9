"""The users dialog's Roles tab: the roles, and what the selected one grants (layout only)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from PySide6.QtWidgets import (
    QCheckBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.window.appearance import set_tone
from desktop.window.forms import left
from desktop.window.theme import Tone

LIST_WIDTH = 180  # pixels: the longest built-in role name and its "(built-in)" fit


class PermissionChecks(QWidget):
    """One check box per permission, one under the other, each with what it allows."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.setObjectName(name)
        self._column = QVBoxLayout(self)
        self._column.setContentsMargins(0, 0, 0, 0)
        self.boxes: dict[str, QCheckBox] = {}

    def set_permissions(self, names: Sequence[str], meanings: Mapping[str, str]) -> None:
        """Offer these permissions (``meanings``: what each allows, when known), none ticked."""
        for box in self.boxes.values():
            self._column.removeWidget(box)
            box.deleteLater()
        self.boxes = {}
        for name in names:
            meaning = meanings.get(name, "")
            box = QCheckBox(f"{name} — {meaning}" if meaning else name)
            box.setObjectName(f"permission {name}")
            self.boxes[name] = box
            self._column.addWidget(box)

    def tick(self, names: Collection[str]) -> None:
        """Tick exactly these permissions."""
        for name, box in self.boxes.items():
            box.setChecked(name in names)

    def ticked(self) -> list[str]:
        """The ticked permissions' names."""
        return [name for name, box in self.boxes.items() if box.isChecked()]

    def set_editable(self, editable: bool) -> None:
        """Let the boxes be ticked, or only read."""
        for box in self.boxes.values():
            box.setEnabled(editable)


class RolesTab(QWidget):
    """The roles on the left; the selected role's description and permissions on the right."""

    def __init__(self) -> None:
        super().__init__()
        self.setObjectName("roles_tab")
        self.roles = QListWidget()
        self.roles.setObjectName("roles_list")
        self.roles.setFixedWidth(LIST_WIDTH)
        self.roles.setSpacing(2)

        self.name = QLabel("Select a role in the list.")
        self.name.setObjectName("role_name")
        font = self.name.font()
        font.setBold(True)
        self.name.setFont(font)
        self.description = QLabel()
        self.description.setObjectName("role_description")
        self.description.setWordWrap(True)
        self.note = QLabel()
        self.note.setObjectName("role_note")
        self.note.setWordWrap(True)
        set_tone(self.note, Tone.NEUTRAL)
        self.permissions = PermissionChecks("role_permissions")
        self.save = QPushButton("Save permissions")
        self.save.setObjectName("save_role_permissions")

        chosen = QGroupBox("Selected role")
        column = QVBoxLayout(chosen)
        column.addWidget(self.name)
        column.addWidget(self.description)
        column.addWidget(self.note)
        column.addSpacing(6)
        column.addWidget(self.permissions)
        column.addWidget(left(self.save))
        column.addStretch(1)
        row = QHBoxLayout(self)
        row.addWidget(self.roles)
        row.addWidget(chosen, 1)
