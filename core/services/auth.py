"""Sign-in, token refresh with reuse detection, sign-out, and who a token belongs to.

A sign-in counts as a failure before its password is checked (the users table, or
``unknown_logins`` for names without an account) and commits that count at once, so
parallel guesses meet the threshold and the lock as they arrive; the slow check runs
outside any transaction, and a success takes the count back. A name without an account
costs the same password check, against a dummy hash, so neither the time nor the answer
(401, then 429) says whether it exists. A successful sign-in also keeps the user's edit key
(``core.edit_keys``) up to date: derived from the password just checked, in the same worker
thread, and stored when none is on record or the one on record is another password's.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core import edit_keys
from core.db.engine import Database
from core.db.models import AuthSession, User
from core.db.types import utcnow
from core.errors import AuthError, LockedError
from core.lockout import lock_for
from core.passwords import verify_password
from core.services import audit, sessions, users
from core.services.actor import Actor
from core.services.unknown_logins import UnknownLogins
from core.settings import Settings
from core.tokens import (
    InvalidTokenError,
    issue_access_token,
    new_refresh_token,
    read_access_token,
    refresh_token_digest,
)

BAD_CREDENTIALS = "wrong username or password"
# The unknown names tried against each database this process serves (tests open many).
_unknown: weakref.WeakKeyDictionary[Database, UnknownLogins] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class TokenPair:
    """What a successful sign-in or refresh hands out."""

    access_token: str
    refresh_token: str
    expires_in: int
    session_id: uuid.UUID


async def _issue(
    session: AsyncSession, settings: Settings, user: User, auth_session: AuthSession
) -> TokenPair:
    now = utcnow()
    ttl = timedelta(minutes=settings.access_token_minutes)
    refresh = new_refresh_token()
    await sessions.add_refresh_token(
        session,
        session_id=auth_session.id,
        digest=refresh_token_digest(refresh),
        now=now,
        expires=now + timedelta(days=settings.refresh_token_days),
    )
    access = issue_access_token(
        secret=settings.secret_key, user_id=user.id, session_id=auth_session.id, now=now, ttl=ttl
    )
    return TokenPair(access, refresh, int(ttl.total_seconds()), auth_session.id)


def lock_seconds(settings: Settings, attempt: int) -> int | None:
    """For how long the ``attempt``-th sign-in in a row locks the name, if it does.

    The threshold's attempt locks for ``login_lock_seconds``; each one after doubles it.
    """
    return lock_for(
        attempt, max_failures=settings.login_max_failures, base_seconds=settings.login_lock_seconds
    )


async def login(
    database: Database, *, settings: Settings, username: str, password: str
) -> TokenPair:
    """Check a password and open a sign-in session; failures are counted, locked and audited.

    Runs its own transactions: the attempt is counted and committed before the password
    check, which holds no lock while it takes its ~0.2 s.
    """
    unknown = _unknown.setdefault(database, UnknownLogins())
    now = utcnow()
    locked: LockedError | None = None
    async with database.session() as session:
        user = await users.find_by_username(session, username)
        attempt = await _count_attempt(session, settings, unknown, username, user, now)
        if attempt is None:
            locked = await _locked(session, unknown, username, user, now)
    if locked is not None or attempt is None:
        raise locked or AuthError(BAD_CREDENTIALS)
    checked = user.password_hash if user is not None else None
    # In a worker thread: argon2 releases the GIL and the event loop goes on meanwhile.
    right, key = await asyncio.to_thread(_check, password, user.id if user else None, checked)
    pair: TokenPair | None = None
    async with database.session() as session:
        # Checked again now: the account may have been disabled during the check.
        signed_in = await users.active_user(session, user.id) if user and right else None
        if signed_in is None:
            await _failed(session, settings, username, user, attempt)
        else:
            # The key is the checked password's: kept unless a new one was set meanwhile.
            if signed_in.password_hash == checked and users.edit_key(signed_in) != key:
                users.store_edit_key(signed_in, key)
            await users.clear_sign_in_failures(session, user_id=signed_in.id)
            auth_session = await sessions.open_session(session, user_id=signed_in.id)
            await audit.record(
                session,
                actor=signed_in.username,
                action="auth.login",
                target_type="user",
                target_id=str(signed_in.id),
            )
            pair = await _issue(session, settings, signed_in, auth_session)
    if pair is None:
        raise AuthError(BAD_CREDENTIALS)
    return pair


async def open_for(
    session: AsyncSession, *, settings: Settings, user: User, method: str
) -> TokenPair:
    """Sign in a user whose identity was checked elsewhere (``method``: ``oidc``), audited.

    The same session and tokens as a password's sign-in; the password's failure count and
    lock are left alone, as they guard the password only.
    """
    auth_session = await sessions.open_session(session, user_id=user.id)
    await audit.record(
        session,
        actor=user.username,
        action="auth.login",
        target_type="user",
        target_id=str(user.id),
        after={"method": method},
    )
    return await _issue(session, settings, user, auth_session)


def _check(
    password: str, user_id: uuid.UUID | None, password_hash: str | None
) -> tuple[bool, bytes | None]:
    """Whether the password is right and, only then, the edit key it makes (blocking).

    The key (``core.edit_keys``) is derived where the password is seen in clear, so the
    server can check the proofs of the person's station edits; a wrong password costs no
    second derivation.
    """
    right = verify_password(password, password_hash)
    if not right or user_id is None:
        return False, None
    return True, edit_keys.derive(password, user_id)


async def _count_attempt(
    session: AsyncSession,
    settings: Settings,
    unknown: UnknownLogins,
    username: str,
    user: User | None,
    now: datetime,
) -> int | None:
    """The attempt's number in a row of failures, or None when the name is locked."""
    if user is None:
        return unknown.attempt(username, now=now, lock_for=lambda n: lock_seconds(settings, n))
    attempt = await users.count_sign_in_attempt(session, user_id=user.id, now=now)
    seconds = lock_seconds(settings, attempt) if attempt is not None else None
    if seconds is not None:  # locked now, as if this attempt failed: a success unlocks
        await users.lock_sign_in(session, user_id=user.id, until=now + timedelta(seconds=seconds))
    return attempt


async def _locked(
    session: AsyncSession, unknown: UnknownLogins, username: str, user: User | None, now: datetime
) -> LockedError:
    """The 429 for a locked name, audited alike whether or not the account exists."""
    if user is None:
        until = unknown.locked_until(username)
    else:
        until = await users.sign_in_locked_until(session, user.id)
    wait = int((until - now).total_seconds()) + 1 if until is not None else 1
    await audit.record(
        session,
        actor=username,
        action="auth.login_locked",
        target_type="user",
        target_id=str(user.id) if user else "",
    )
    msg = f"too many failed sign-ins: try again in {wait} s"
    return LockedError(msg, retry_after=wait)


async def _failed(
    session: AsyncSession, settings: Settings, username: str, user: User | None, attempt: int
) -> None:
    detail: dict[str, object] = {"username": username, "failures": attempt}
    seconds = lock_seconds(settings, attempt)
    if seconds is not None:
        detail["locked_for_s"] = seconds
    await audit.record(
        session,
        actor=username,
        action="auth.login_failed",
        target_type="user",
        target_id=str(user.id) if user else "",
        after=detail,
    )


async def refresh(session: AsyncSession, *, settings: Settings, refresh_token: str) -> TokenPair:
    """Rotate a refresh token; presenting a used one revokes its whole family.

    The caller must commit even when this raises AuthError, so a revocation stays.
    """
    row = await sessions.find_refresh_token(session, refresh_token_digest(refresh_token))
    if row is None:
        raise AuthError("unknown refresh token")
    auth_session = await sessions.get(session, row.session_id)
    assert auth_session is not None
    now = utcnow()
    if auth_session.revoked_at is not None:
        raise AuthError("this session has ended; sign in again")
    if row.used_at is not None:
        raise await _replayed(session, auth_session)
    if row.expires_at <= now:
        raise AuthError("refresh token expired; sign in again")
    # Marked used atomically: of two presenting it at once, the second is a replay too.
    if not await sessions.use_refresh_token(session, row, now=now):
        raise await _replayed(session, auth_session)
    user = await users.active_user(session, auth_session.user_id)
    if user is None:
        raise AuthError("the account is disabled")
    # No token in it: the sign-in session's id, short, tells one person's sessions apart.
    await audit.record(
        session,
        actor=user.username,
        action="auth.refresh",
        target_type="user",
        target_id=str(user.id),
        after={"session": str(auth_session.id)[:8]},
    )
    return await _issue(session, settings, user, auth_session)


async def _replayed(session: AsyncSession, auth_session: AuthSession) -> AuthError:
    """A used refresh token came back: someone holds a copy, so the whole session ends."""
    await sessions.end(
        session, session_id=auth_session.id, reason="refresh_token_reuse", actor="system"
    )
    return AuthError("refresh token already used: the session is revoked; sign in again")


async def logout(session: AsyncSession, *, session_id: uuid.UUID, actor: str) -> None:
    """End a sign-in session: its access and refresh tokens stop working at once."""
    await sessions.end(session, session_id=session_id, reason="logout", actor=actor)


async def resolve_session(
    session: AsyncSession, *, user_id: uuid.UUID, session_id: uuid.UUID
) -> tuple[User, Actor]:
    """The user and actor of a live sign-in session, or AuthError."""
    auth_session = await sessions.get(session, session_id)
    if auth_session is None or auth_session.revoked_at is not None:
        raise AuthError("this session has ended; sign in again")
    if auth_session.user_id != user_id:
        raise AuthError("token does not match its session")
    user = await users.active_user(session, user_id)
    if user is None:
        raise AuthError("the account is disabled")
    return user, await users.actor_for(session, user, session_id=session_id)


async def resolve_session_id(session: AsyncSession, *, session_id: uuid.UUID) -> tuple[User, Actor]:
    """The user and actor of a live sign-in session known only by its id (the web UI)."""
    auth_session = await sessions.get(session, session_id)
    if auth_session is None:
        raise AuthError("this session has ended; sign in again")
    return await resolve_session(session, user_id=auth_session.user_id, session_id=session_id)


async def authenticate(
    session: AsyncSession, *, settings: Settings, access_token: str
) -> tuple[User, Actor, uuid.UUID]:
    """Who an access token belongs to, checked against its live session."""
    try:
        claims = read_access_token(access_token, secret=settings.secret_key, now=utcnow())
    except InvalidTokenError as error:
        msg = f"invalid access token: {error}"
        raise AuthError(msg) from error
    user, actor = await resolve_session(
        session, user_id=claims.user_id, session_id=claims.session_id
    )
    return user, actor, claims.session_id
