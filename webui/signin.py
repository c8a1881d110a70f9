"""Who is signed in to this browser tab, kept in NiceGUI's per-browser user storage."""

from __future__ import annotations

import uuid

from nicegui import app

from core.db.engine import Database
from core.errors import AuthError
from core.services import auth
from core.services.actor import Actor
from core.settings import Settings


async def sign_in(database: Database, settings: Settings, *, username: str, password: str) -> None:
    """Check the password and remember the new session in this browser (AuthError if not)."""
    # Its own transactions: failures are counted before the check and stay when it fails.
    pair = await auth.login(database, settings=settings, username=username, password=password)
    app.storage.user["session_id"] = str(pair.session_id)


async def sign_out(database: Database, actor: Actor) -> None:
    """End this browser's session everywhere it is used."""
    session_id = app.storage.user.pop("session_id", None)
    if session_id:
        async with database.session() as session:
            await auth.logout(session, session_id=uuid.UUID(session_id), actor=actor.name)


async def current_actor(database: Database) -> Actor | None:
    """The signed-in actor, or None when nobody is (or the session has ended)."""
    session_id = app.storage.user.get("session_id")
    if not session_id:
        return None
    async with database.session() as session:
        try:
            _, actor = await auth.resolve_session_id(session, session_id=uuid.UUID(session_id))
        except AuthError:
            app.storage.user.pop("session_id", None)
            return None
    return actor
