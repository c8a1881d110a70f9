"""The users table: plain rows built from the replica's people, and the Qt model that shows them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from desktop.agent.replica import PersonRecord

Index = QModelIndex | QPersistentModelIndex
HEADERS = ("Username", "Display name", "Roles", "Status")


@dataclass(frozen=True)
class UserRow:
    """One person as the table shows them (the id stays out of sight)."""

    user_id: uuid.UUID
    username: str
    display_name: str
    roles: tuple[str, ...]
    active: bool

    @property
    def cells(self) -> tuple[str, str, str, str]:
        """The row's text, column by column."""
        roles = ", ".join(self.roles) if self.roles else "no roles"
        return (self.username, self.display_name, roles, "enabled" if self.active else "disabled")


def user_rows(people: Sequence[PersonRecord]) -> list[UserRow]:
    """Every live person, by username."""
    rows = [
        UserRow(p.user_id, p.username, p.display_name, tuple(p.roles), p.is_active) for p in people
    ]
    return sorted(rows, key=lambda row: row.username.casefold())


class UsersModel(QAbstractTableModel):
    """A read-only table model over the people rows."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[UserRow] = []

    @property
    def rows(self) -> list[UserRow]:
        """The rows shown now."""
        return list(self._rows)

    def set_rows(self, rows: Sequence[UserRow]) -> None:
        """Show these people."""
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def row(self, index: int) -> UserRow | None:
        """The person on row ``index``, if there is one."""
        return self._rows[index] if 0 <= index < len(self._rows) else None

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        """People shown (a table has no children)."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        """Username, display name, roles, status."""
        return 0 if parent.isValid() else len(HEADERS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        """A cell's text."""
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._rows[index.row()].cells[index.column()]
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        """Column titles; rows have none."""
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return HEADERS[section]
        return None
