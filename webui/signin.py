"""Who is signed in to this browser tab, kept in NiceGUI's per-browser user storage.

Only the session's id is kept in the browser's storage, never what it may do: who is
acting, and with which permissions, is read from the database each time it is asked, so a
session ended elsewhere, a disabled or deleted account and a lost role count at once.
"""

from __future__ import annotations

import uuid

from nicegui import app
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.errors import AuthError
from core.services import auth
from core.services.actor import Actor
from core.settings import Settings

SESSION_KEY = "session_id"
ENDED_KEY = "session_ended"  # why this browser's session ended; the sign-in page says it


async def sign_in(database: Database, settings: Settings, *, username: str, password: str) -> None:
    """Check the password and remember the new session in this browser (AuthError if not)."""
    # Its own transactions: failures are counted before the check and stay when it fails.
    pair = await auth.login(database, settings=settings, username=username, password=password)
    remember(pair.session_id)


def remember(session_id: uuid.UUID) -> None:
    """This browser is now signed in to ``session_id`` (a password's or a provider's)."""
    app.storage.user.pop(ENDED_KEY, None)
    app.storage.user[SESSION_KEY] = str(session_id)


async def sign_out(database: Database, actor: Actor) -> None:
    """End this browser's session everywhere it is used."""
    session_id = app.storage.user.pop(SESSION_KEY, None)
    if session_id:
        async with database.session() as session:
            await auth.logout(session, session_id=uuid.UUID(session_id), actor=actor.name)


async def actor_in(session: AsyncSession) -> Actor | None:
    """The signed-in actor as ``session`` reads it now; None when nobody is.

    When the session has ended (signed out elsewhere, account disabled or deleted) the
    browser forgets it and keeps the reason for the sign-in page.
    """
    session_id = app.storage.user.get(SESSION_KEY)
    if not session_id:
        return None
    try:
        _, actor = await auth.resolve_session_id(session, session_id=uuid.UUID(session_id))
    except AuthError as error:
        app.storage.user.pop(SESSION_KEY, None)
        app.storage.user[ENDED_KEY] = error.message
        return None
    return actor


async def current_actor(database: Database) -> Actor | None:
    """The signed-in actor, or None when nobody is (or the session has ended)."""
    if not app.storage.user.get(SESSION_KEY):
        return None
    async with database.session() as session:
        return await actor_in(session)


def ended_reason() -> str | None:
    """Why this browser's last session ended, until the next sign-in (None: not from elsewhere).

    Kept, not said once: every open tab of the browser is sent to sign-in, and each says why.
    """
    reason = app.storage.user.get(ENDED_KEY)
    return str(reason) if reason else None
