"""The live values table: plain rows built from a sample, and the Qt model that shows them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from core.protocol.telemetry import Value

Index = QModelIndex | QPersistentModelIndex
HEADERS = ("Channel", "Value", "Type")


@dataclass(frozen=True)
class ValueRow:
    """One channel as the table shows it."""

    channel: str
    text: str
    kind: str

    @property
    def cells(self) -> tuple[str, str, str]:
        """The row's text, column by column."""
        return (self.channel, self.text, self.kind)


def value_row(channel: str, value: Value) -> ValueRow:
    """A channel's row: decimals keep their scale, booleans read as words."""
    if isinstance(value, bool):  # before int: a bool is an int too
        return ValueRow(channel, "true" if value else "false", "boolean")
    if isinstance(value, Decimal):
        return ValueRow(channel, str(value), "decimal")
    return ValueRow(channel, str(value), "integer")


def value_rows(values: Mapping[str, Value]) -> list[ValueRow]:
    """Every channel of a sample, sorted by name so rows do not jump around."""
    return [value_row(channel, values[channel]) for channel in sorted(values)]


class ValuesModel(QAbstractTableModel):
    """A read-only table model over the latest sample's rows."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[ValueRow] = []

    @property
    def rows(self) -> list[ValueRow]:
        """The rows shown now."""
        return list(self._rows)

    def set_values(self, values: Mapping[str, Value]) -> None:
        """Show a new sample; same channels repaint in place, others reset the table."""
        rows = value_rows(values)
        if [r.channel for r in rows] == [r.channel for r in self._rows]:
            self._rows = rows
            if rows:
                last = self.index(len(rows) - 1, len(HEADERS) - 1)
                self.dataChanged.emit(self.index(0, 1), last, [Qt.ItemDataRole.DisplayRole])
            return
        self.beginResetModel()
        self._rows = rows
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        """Channels shown (a table has no children)."""
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        """Channel, value and type."""
        return 0 if parent.isValid() else len(HEADERS)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        """A cell's text; values align right like numbers do."""
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._rows[index.row()].cells[index.column()]
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() == 1:
            return Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> object:
        """Column titles; rows have none."""
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return HEADERS[section]
        return None
