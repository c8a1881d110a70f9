"""The one place database engines are created."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
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
# Bare asyncpg connections for the hot path that bypasses SQLAlchemy (telemetry ingest): one
# per ingest worker, and one over for whatever else borrows one.
RAW_POOL_SIZE = 4
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
        self._raw_pool: asyncpg.Pool | None = None
        self._raw_pool_made = asyncio.Lock()

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

    @asynccontextmanager
    async def raw_connection(self) -> AsyncIterator[Any]:
        """A bare asyncpg connection (PostgreSQL only), for the statements of a hot path.

        From a pool of its own, which neither pings a connection as it lends it nor resets it
        as it takes it back, as SQLAlchemy's pool does: two round trips saved of the ten or so
        a small ingest transaction makes. A broken connection fails the statement that meets
        it, and the pool connects again the next time. A connection is rolled back on its
        return only if it comes back inside a transaction.
        """
        async with self._raw_pool_made:
            if self._raw_pool is None:
                dsn = self.engine.url.set(drivername="postgresql")
                self._raw_pool = await asyncpg.create_pool(
                    dsn.render_as_string(hide_password=False),
                    min_size=0,
                    max_size=RAW_POOL_SIZE,
                    reset=_rollback_if_open,
                )
        async with self._raw_pool.acquire() as connection:
            yield connection

    async def close(self) -> None:
        """Release every pooled connection."""
        if self._raw_pool is not None:
            await self._raw_pool.close()
            self._raw_pool = None
        await self.engine.dispose()


async def _rollback_if_open(connection: Any) -> None:
    if connection.is_in_transaction():
        await connection.execute("ROLLBACK")
