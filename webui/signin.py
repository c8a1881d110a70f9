"""Who is signed in to this browser tab, kept in NiceGUI's per-browser user storage."""

from __future__ import annotations

import uuid

from nicegui import app, ui

from core.db.engine import Database
from core.errors import AuthError
from core.services import auth
from core.services.actor import Actor
from core.settings import Settings
from webui.backbone.server import Backbone


def database() -> Database:
    """The server's database."""
    db: Database = app.state.database
    return db


def backbone() -> Backbone:
    """The server's MQTT side."""
    running: Backbone = app.state.backbone
    return running


def settings() -> Settings:
    """The server's settings."""
    current: Settings = app.state.settings
    return current


async def sign_in(username: str, password: str) -> None:
    """Check the password and remember the new session in this browser (AuthError if not)."""
    failure: AuthError | None = None
    # Committed even on failure: the failure count and audit row must stay.
    async with database().session() as session:
        try:
            pair = await auth.login(
                session, settings=settings(), username=username, password=password
            )
        except AuthError as error:
            failure = error
    if failure is not None:
        raise failure
    app.storage.user["session_id"] = str(pair.session_id)


async def sign_out(actor: Actor) -> None:
    """End this browser's session everywhere it is used."""
    session_id = app.storage.user.pop("session_id", None)
    if session_id:
        async with database().session() as session:
            await auth.logout(session, session_id=uuid.UUID(session_id), actor=actor.name)


async def current_actor() -> Actor | None:
    """The signed-in actor, or None when nobody is (or the session has ended)."""
    session_id = app.storage.user.get("session_id")
    if not session_id:
        return None
    async with database().session() as session:
        try:
            _, actor = await auth.resolve_session_id(session, session_id=uuid.UUID(session_id))
        except AuthError:
            app.storage.user.pop("session_id", None)
            return None
    return actor


async def guard(permission: str | None = None) -> Actor | None:
    """The actor if allowed here; otherwise send to sign-in or show why not, and None."""
    actor = await current_actor()
    if actor is None:
        ui.navigate.to("/login")
        return None
    if permission is not None and not actor.can(permission):
        from webui.layout import not_allowed  # layout imports signin: a cycle at module level

        not_allowed(actor, permission)
        return None
    return actor
