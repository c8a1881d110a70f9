"""Operators sign in to their station against its replica: with or without the network.

As on the web (``core.services.auth``): an attempt is counted before its password is
checked, a row of failures locks the name (``core.lockout``: doubling, up to a day), and a
success takes the count back. A name without an account (or a deleted one) costs the same
password check, against a dummy hash, and gets the same answer as a wrong password. A
disabled account is named only to someone who knows its password. Failures are counted in
the replica, per station, and never synced. A success derives the person's edit key from
the password just checked (``core.edit_keys``): their edits at the station are signed with
it, and the server counts only edits signed with their current password's key. The key
stays in memory with the ``Person``, never in the replica.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from core import edit_keys
from core.lockout import lock_for
from core.passwords import verify_password
from core.rbac import ADMIN
from core.settings import Settings
from desktop.agent.replica import PersonRecord, Replica

BAD_CREDENTIALS = "wrong username or password"
WRONG_PASSWORD = "wrong password"
UNKNOWN_USER = "unknown user"  # no such name in the replica, or a deleted one
DISABLED = "disabled"
MAX_USERNAME = 64  # the server's limit (core.services.users.USERNAME): longer is nobody


@dataclass(frozen=True)
class Person:
    """Someone signed in at the station, as the replica knew them when they signed in.

    ``edit_key``: derived from their password at sign-in, to sign their edits (None: made
    some other way, and may not edit). As good as the password for sync: never shown in a
    repr, never compared.
    """

    user_id: uuid.UUID
    username: str
    display_name: str
    roles: tuple[str, ...]
    permissions: frozenset[str]
    edit_key: bytes | None = field(default=None, repr=False, compare=False)

    def may(self, permission: str) -> bool:
        """Whether they hold ``permission``."""
        return permission in self.permissions

    @property
    def is_admin(self) -> bool:
        """Whether they hold the built-in Admin role."""
        return ADMIN in self.roles

    @property
    def shown_name(self) -> str:
        """How to name them to people: their display name, else their username."""
        return self.display_name or self.username

    @classmethod
    def of(cls, record: PersonRecord, *, edit_key: bytes | None = None) -> Person:
        """The person a replica record describes (with the edit key their sign-in derived)."""
        return cls(
            record.user_id,
            record.username,
            record.display_name,
            record.roles,
            record.permissions,
            edit_key=edit_key,
        )


class SignInRefused(Exception):
    """A sign-in the station refused; ``reason`` is what to tell the person.

    ``cause`` tells a wrong password from an unknown name, for ``station login``: whoever
    can run it can list the replica's users anyway (``station users``). The window says
    ``reason``, which does not tell them apart, as the web does.
    """

    def __init__(
        self, reason: str, *, cause: str | None = None, locked_until: datetime | None = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cause = cause or reason
        self.locked_until = locked_until


def _locked(until: datetime | None) -> SignInRefused:
    if until is None:  # unlocked meanwhile by a success elsewhere: say it plainly
        return SignInRefused("locked: try again")
    shown = until.astimezone().strftime("%H:%M:%S")  # the station's local time
    return SignInRefused(f"locked until {shown}", locked_until=until)


def sign_in(
    replica: Replica,
    username: str,
    password: str,
    *,
    max_failures: int,
    lock_seconds: int,
    now: datetime | None = None,
) -> Person:
    """The person whose password this is, with their edit key, or SignInRefused and why.

    Blocking (the password check and, on success, the key each take ~0.2 s): call it from
    a worker thread.
    """
    now = now or datetime.now(UTC)
    if not 0 < len(username) <= MAX_USERNAME:
        verify_password(password, None)  # the same effort as for any other name
        raise SignInRefused(BAD_CREDENTIALS, cause=UNKNOWN_USER)
    attempt = replica.count_sign_in_attempt(
        username,
        now=now,
        lock_for=lambda n: lock_for(n, max_failures=max_failures, base_seconds=lock_seconds),
    )
    if attempt is None:
        raise _locked(replica.sign_in_locked_until(username))
    record = replica.find(username)
    right = verify_password(password, (record.password_hash or None) if record else None)
    # Read again: a page may have disabled, deleted or re-keyed them during the check.
    current = replica.find(username)
    if record is None or current is None or current.user_id != record.user_id:
        raise SignInRefused(BAD_CREDENTIALS, cause=UNKNOWN_USER)
    if not right or current.password_hash != record.password_hash:
        raise SignInRefused(BAD_CREDENTIALS, cause=WRONG_PASSWORD)
    if not current.is_active:
        raise SignInRefused(DISABLED)
    replica.clear_sign_in_failures(username)
    return Person.of(current, edit_key=edit_keys.derive(password, current.user_id))


def sign_in_with(replica: Replica, username: str, password: str, settings: Settings) -> Person:
    """``sign_in`` with the web's lockout (``login_max_failures``, ``login_lock_seconds``)."""
    return sign_in(
        replica,
        username,
        password,
        max_failures=settings.login_max_failures,
        lock_seconds=settings.login_lock_seconds,
    )
