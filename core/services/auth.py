"""Sign-in, token refresh with reuse detection, sign-out, and who a token belongs to."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import AuthSession, RefreshToken, User
from core.db.types import utcnow
from core.errors import AuthError, LockedError
from core.passwords import verify_password
from core.services import audit, users
from core.services.actor import Actor
from core.settings import Settings
from core.tokens import (
    InvalidTokenError,
    issue_access_token,
    new_refresh_token,
    read_access_token,
    refresh_token_digest,
)

BAD_CREDENTIALS = "wrong username or password"


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
    session.add(
        RefreshToken(
            token_hash=refresh_token_digest(refresh),
            session_id=auth_session.id,
            issued_at=now,
            expires_at=now + timedelta(days=settings.refresh_token_days),
        )
    )
    access = issue_access_token(
        secret=settings.secret_key, user_id=user.id, session_id=auth_session.id, now=now, ttl=ttl
    )
    return TokenPair(access, refresh, int(ttl.total_seconds()), auth_session.id)


async def login(
    session: AsyncSession, *, settings: Settings, username: str, password: str
) -> TokenPair:
    """Check a password and open a sign-in session; failures are counted, locked and audited.

    The caller must commit even when this raises AuthError, so the failure is recorded.
    """
    user = await users.find_by_username(session, username)
    now = utcnow()
    if user is not None and user.locked_until is not None and user.locked_until > now:
        wait = int((user.locked_until - now).total_seconds()) + 1
        await audit.record(
            session,
            actor=username,
            action="auth.login_locked",
            target_type="user",
            target_id=str(user.id),
        )
        msg = f"too many failed sign-ins: try again in {wait} s"
        raise LockedError(msg, retry_after=wait)
    if user is None or not verify_password(password, user.password_hash) or not user.is_active:
        await _count_failure(session, settings, username, user, now)
        raise AuthError(BAD_CREDENTIALS)
    user.failed_logins, user.locked_until = 0, None
    auth_session = AuthSession(user_id=user.id)
    session.add(auth_session)
    await session.flush()
    await audit.record(
        session,
        actor=user.username,
        action="auth.login",
        target_type="user",
        target_id=str(user.id),
    )
    return await _issue(session, settings, user, auth_session)


async def _count_failure(
    session: AsyncSession, settings: Settings, username: str, user: User | None, now: datetime
) -> None:
    detail: dict[str, object] = {"username": username}
    if user is not None:
        user.failed_logins += 1
        over = user.failed_logins - settings.login_max_failures
        if over >= 0:
            # Each further failure doubles the lock, capped at a day.
            seconds = min(settings.login_lock_seconds * 2 ** min(over, 20), 86_400)
            user.locked_until = now + timedelta(seconds=seconds)
            detail["locked_for_s"] = seconds
        detail["failures"] = user.failed_logins
    await audit.record(
        session,
        actor=username,
        action="auth.login_failed",
        target_type="user",
        target_id=str(user.id) if user else "",
        after=detail,
    )


async def refresh(session: AsyncSession, *, settings: Settings, refresh_token: str) -> TokenPair:
    """Rotate a refresh token; presenting a used one revokes its whole family."""
    row = await session.get(RefreshToken, refresh_token_digest(refresh_token))
    if row is None:
        raise AuthError("unknown refresh token")
    auth_session = await session.get(AuthSession, row.session_id)
    assert auth_session is not None
    now = utcnow()
    if auth_session.revoked_at is not None:
        raise AuthError("this session has ended; sign in again")
    if row.used_at is not None:
        await _revoke(session, auth_session, reason="refresh_token_reuse", actor="system")
        raise AuthError("refresh token already used: the session is revoked; sign in again")
    if row.expires_at <= now:
        raise AuthError("refresh token expired; sign in again")
    user = await session.get(User, auth_session.user_id)
    if user is None or user.deleted or not user.is_active:
        raise AuthError("the account is disabled")
    row.used_at = now
    return await _issue(session, settings, user, auth_session)


async def _revoke(
    session: AsyncSession, auth_session: AuthSession, *, reason: str, actor: str
) -> None:
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == auth_session.id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    await audit.record(
        session,
        actor=actor,
        action=f"auth.session_revoked.{reason}",
        target_type="user",
        target_id=str(auth_session.user_id),
    )


async def logout(session: AsyncSession, *, session_id: uuid.UUID, actor: str) -> None:
    """End a sign-in session: its access and refresh tokens stop working at once."""
    auth_session = await session.get(AuthSession, session_id)
    if auth_session is not None and auth_session.revoked_at is None:
        await _revoke(session, auth_session, reason="logout", actor=actor)


async def resolve_session(
    session: AsyncSession, *, user_id: uuid.UUID, session_id: uuid.UUID
) -> tuple[User, Actor]:
    """The user and actor of a live sign-in session, or AuthError."""
    auth_session = await session.get(AuthSession, session_id)
    if auth_session is None or auth_session.revoked_at is not None:
        raise AuthError("this session has ended; sign in again")
    if auth_session.user_id != user_id:
        raise AuthError("token does not match its session")
    user = await session.get(User, user_id)
    if user is None or user.deleted or not user.is_active:
        raise AuthError("the account is disabled")
    return user, await users.actor_for(session, user)


async def resolve_session_id(session: AsyncSession, *, session_id: uuid.UUID) -> tuple[User, Actor]:
    """The user and actor of a live sign-in session known only by its id (the web UI)."""
    auth_session = await session.get(AuthSession, session_id)
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
