"""The live values table: plain rows built from a sample, and the Qt model that shows them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from PySide6.QtCore import Qt

from core.protocol.telemetry import Value
from desktop.window.rows_model import RowsModel

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


class ValuesModel(RowsModel):
    """A read-only table model over the latest sample's rows; values align right."""

    headers = HEADERS
    numeric_columns = frozenset({1})

    @property
    def rows(self) -> list[ValueRow]:
        """The rows shown now."""
        return list(cast("Sequence[ValueRow]", self._rows))  # only set_* puts rows here

    def set_values(self, values: Mapping[str, Value]) -> None:
        """Show a new sample; same channels repaint in place, others reset the table."""
        rows = value_rows(values)
        if [r.channel for r in rows] == [r.channel for r in self.rows]:
            self._rows = rows
            if rows:
                last = self.index(len(rows) - 1, len(HEADERS) - 1)
                self.dataChanged.emit(self.index(0, 1), last, [Qt.ItemDataRole.DisplayRole])
            return
        self._reset(rows)
