"""Sign-in sessions and their refresh tokens: opened, rotated and ended (these two tables)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import AuthSession, RefreshToken
from core.db.types import utcnow
from core.services import audit


async def open_session(session: AsyncSession, *, user_id: uuid.UUID) -> AuthSession:
    """A new, live sign-in session of the user."""
    auth_session = AuthSession(user_id=user_id)
    session.add(auth_session)
    await session.flush()
    return auth_session


async def get(session: AsyncSession, session_id: uuid.UUID) -> AuthSession | None:
    """A sign-in session by id, ended or not."""
    return await session.get(AuthSession, session_id)


async def add_refresh_token(
    session: AsyncSession, *, session_id: uuid.UUID, digest: str, now: datetime, expires: datetime
) -> None:
    """Keep a new refresh token of the session, by its digest only."""
    session.add(
        RefreshToken(token_hash=digest, session_id=session_id, issued_at=now, expires_at=expires)
    )


async def find_refresh_token(session: AsyncSession, digest: str) -> RefreshToken | None:
    """The refresh token with this digest, used or not."""
    return await session.get(RefreshToken, digest)


async def use_refresh_token(session: AsyncSession, token: RefreshToken, *, now: datetime) -> bool:
    """Mark a refresh token used, atomically: False if someone else used it first."""
    used = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.token_hash == token.token_hash, RefreshToken.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(used.rowcount)  # type: ignore[attr-defined]


async def end(session: AsyncSession, *, session_id: uuid.UUID, reason: str, actor: str) -> None:
    """End one sign-in session (audited if it was live): its tokens stop working at once."""
    auth_session = await get(session, session_id)
    if auth_session is not None:
        await _end(session, [auth_session.id], auth_session.user_id, reason=reason, actor=actor)


async def end_all_of(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    reason: str,
    actor: str,
    keep: uuid.UUID | None = None,
) -> int:
    """End every live sign-in session of a user except ``keep``; how many ended."""
    query = select(AuthSession.id).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    if keep is not None:
        query = query.where(AuthSession.id != keep)
    ids = list(await session.scalars(query))
    return await _end(session, ids, user_id, reason=reason, actor=actor)


async def _end(
    session: AsyncSession, ids: list[uuid.UUID], user_id: uuid.UUID, *, reason: str, actor: str
) -> int:
    if not ids:
        return 0
    ended = await session.execute(
        update(AuthSession)
        .where(AuthSession.id.in_(ids), AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
        .execution_options(synchronize_session="fetch")
    )
    count = int(ended.rowcount)  # type: ignore[attr-defined]
    if count:
        await audit.record(
            session,
            actor=actor,
            action=f"auth.session_revoked.{reason}",
            target_type="user",
            target_id=str(user_id),
            after={"sessions": count},
        )
    return count
