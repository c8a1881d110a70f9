"""The one place database engines are created."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from core import events
from core.settings import to_async_url
from core.sync import capture


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Writers wait for each other instead of failing at once with "database is locked".
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


SUPPORTED_BACKENDS = ("postgresql", "sqlite")
AUDIT_KEY_INFO = "pp.audit_key"  # the key, in ``session.info``, of the audit log's HMAC key


class UnsupportedDatabaseError(ValueError):
    """The URL names a database other than PostgreSQL or SQLite."""


def create_engine(url: str) -> AsyncEngine:
    """An async engine for PostgreSQL (asyncpg) or SQLite (aiosqlite)."""
    url = to_async_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() not in SUPPORTED_BACKENDS:
        msg = (
            f"{parsed.get_backend_name()!r} is not supported; "
            "use postgresql://user:password@host/database or sqlite:///path/to/file.db"
        )
        raise UnsupportedDatabaseError(msg)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


class Database:
    """An engine, its session factory and the bus its committed changes are announced on."""

    def __init__(self, url: str, *, audit_key: bytes | None = None) -> None:
        self.engine = create_engine(url)
        # The audit log's HMAC key rides on every session (core.services.audit reads it):
        # the many services that record audit entries need no extra argument for it.
        self.sessions = async_sessionmaker(
            self.engine,
            expire_on_commit=False,
            info={AUDIT_KEY_INFO: audit_key},
            sync_session_class=capture.CapturingSession,
        )
        self.events = events.EventBus()

    @property
    def dialect(self) -> str:
        """``postgresql`` or ``sqlite``."""
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on success and rolls back on error.

        The events its services recorded are published once it has committed; an error
        rolls the transaction back and leaves the events unpublished.
        """
        async with self.sessions() as session:
            async with session.begin():
                yield session
            committed = events.take(session)
        await self.events.publish(committed)

    async def close(self) -> None:
        """Release every pooled connection."""
        await self.engine.dispose()
