"""Who is acting: a signed-in user, the shell, or the system itself."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from core.errors import ForbiddenError
from core.rbac import ADMIN


@dataclass(frozen=True)
class Actor:
    """The identity a service call is made under, with its effective permissions."""

    name: str
    user_id: uuid.UUID | None = None
    permissions: frozenset[str] = field(default_factory=frozenset)
    roles: tuple[str, ...] = ()
    # The sign-in session acting, so a password change can end every session but this one.
    session_id: uuid.UUID | None = None

    @property
    def is_admin(self) -> bool:
        """Whether this actor holds the Admin role (only an Admin touches Admins)."""
        return ADMIN in self.roles

    def can(self, permission: str) -> bool:
        """Whether this actor holds ``permission``."""
        return permission in self.permissions

    def require(self, permission: str) -> None:
        """Raise ForbiddenError unless this actor holds ``permission``."""
        if not self.can(permission):
            msg = f"'{permission}' is required"
            raise ForbiddenError(msg)

    def require_to_grant(self, grants: Mapping[str, Iterable[str]]) -> None:
        """Raise ForbiddenError unless this actor holds all these roles grant, by role name.

        Nobody grants what they do not hold, and only an Admin grants the Admin role.
        """
        if ADMIN in grants and not self.is_admin:
            msg = f"only an Admin may grant the {ADMIN} role"
            raise ForbiddenError(msg, field="roles")
        for role, permissions in sorted(grants.items()):
            lacking = sorted(set(permissions) - self.permissions)
            if lacking:
                msg = f"the role '{role}' grants {', '.join(lacking)}, which you do not hold"
                raise ForbiddenError(msg, field="roles")

    def require_to_change(self, username: str, roles: Iterable[str], holds: Iterable[str]) -> None:
        """Raise ForbiddenError unless this actor may change an account with these roles.

        An Admin's account takes an Admin; any account takes every permission it ``holds``,
        since setting its password is as good as signing in as it.
        """
        if ADMIN in roles and not self.is_admin:
            msg = f"only an Admin may change the account of an Admin ('{username}')"
            raise ForbiddenError(msg)
        lacking = sorted(set(holds) - self.permissions)
        if lacking:
            msg = (
                f"'{username}' holds {', '.join(lacking)}, which you do not: "
                "only someone holding all of it may change this account"
            )
            raise ForbiddenError(msg)
