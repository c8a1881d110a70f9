"""Who operates the station now, re-read from the replica whenever they act (no Qt here).

A sign-in yields a ``Person`` as the replica saw them at that moment. A sync may demote,
disable or delete them while they stay signed in, so nothing the window lets them do trusts
that snapshot: ``require`` reads them again from the replica, at the moment of acting, and
refuses a person no longer active or no longer holding the permission. Blocking (SQLite):
call it from a thread, like the replica's other calls. The person it hands out carries the
edit key their sign-in derived (their edits are signed with it), or the one their own
password change at this station made since.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.protocol.sync import Edit
from desktop.agent.replica import Replica
from desktop.agent.sign_in import Person

# What each of the window's actions needs, and why it is that permission: the window's
# actions are the station-side twins of what the web allows with the same permission.
# Watching the station and editing one's own name and password need none.
REPLAY = "commands:send"  # a replay now is what the FlushOutbox command does from the web
SETTINGS = "config:write"  # a local interval goes up as an edit of the device's configuration
USERS = "users:manage"  # creating, enabling, disabling people and setting their roles
ROLES = "roles:manage"  # changing what a custom role grants


class SignedOutError(Exception):
    """The person may no longer be signed in (disabled or deleted since): ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class Session:
    """A person signed in at this station, over the replica that vouched for them."""

    replica: Replica
    signed_in: Person  # as they were at sign-in: who the session is for

    def __post_init__(self) -> None:
        self._edit_key = self.signed_in.edit_key  # never in a repr: not a dataclass field

    def changed_password(self, edit: Edit) -> None:
        """They changed their own password here: sign their later edits with its new key."""
        key = edit.keys.get(self.signed_in.user_id)
        if edit.user_id == self.signed_in.user_id and key is not None:
            self._edit_key = bytes.fromhex(key)

    def current(self) -> Person:
        """The person as the replica says now; ``SignedOutError`` if disabled or deleted."""
        record = next(
            (p for p in self.replica.people() if p.user_id == self.signed_in.user_id), None
        )
        if record is None:
            raise SignedOutError("your account was deleted")
        if not record.is_active:
            raise SignedOutError("your account was disabled")
        return Person.of(record, edit_key=self._edit_key)

    def require(self, permission: str, doing: str) -> Person:
        """The person now, if they still hold ``permission``; PermissionError says otherwise."""
        person = self.current()
        if not person.may(permission):
            msg = f"{doing} needs the {permission} permission, which your roles do not give"
            raise PermissionError(msg)
        return person


def sentence(text: str) -> str:
    """A reason as a sentence: "wrong username or password" -> "Wrong username or password."."""
    text = text.strip()
    return (text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")) if text else ""
