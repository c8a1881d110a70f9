"""The users table: plain rows built from the replica's people, and the Qt model that shows them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from desktop.agent.replica import PersonRecord
from desktop.window.rows_model import RowsModel

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


class UsersModel(RowsModel):
    """A read-only table model over the people rows."""

    headers = HEADERS

    @property
    def rows(self) -> list[UserRow]:
        """The rows shown now."""
        return list(cast("Sequence[UserRow]", self._rows))  # only set_* puts rows here

    def set_rows(self, rows: Sequence[UserRow]) -> None:
        """Show these people."""
        self._reset(rows)

    def row(self, index: int) -> UserRow | None:
        """The person on row ``index``, if there is one."""
        rows = self.rows
        return rows[index] if 0 <= index < len(rows) else None
