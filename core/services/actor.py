"""Who is acting: a signed-in user, the shell, or the system itself."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from core.errors import ForbiddenError


@dataclass(frozen=True)
class Actor:
    """The identity a service call is made under, with its effective permissions."""

    name: str
    user_id: uuid.UUID | None = None
    permissions: frozenset[str] = field(default_factory=frozenset)
    roles: tuple[str, ...] = ()

    def can(self, permission: str) -> bool:
        """Whether this actor holds ``permission``."""
        return permission in self.permissions

    def require(self, permission: str) -> None:
        """Raise ForbiddenError unless this actor holds ``permission``."""
        if not self.can(permission):
            msg = f"'{permission}' is required"
            raise ForbiddenError(msg)
