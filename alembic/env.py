"""Alembic environment: one history for PostgreSQL and SQLite, run on an async engine."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.engine import Connection

from alembic import context
from core.db.engine import create_engine
from core.db.migrations import MigrationError
from core.db.models import Base
from core.settings import Settings

config = context.config


def _url() -> str:
    return config.attributes.get("database_url") or Settings().async_database_url


def _configure(connection: Connection, *, sqlite: bool) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )


def _migrate(connection: Connection) -> None:
    if connection.dialect.name != "sqlite":
        _configure(connection, sqlite=False)
        with context.begin_transaction():
            context.run_migrations()
        return
    # Batch mode rebuilds a table by copy-and-drop; with foreign keys on, dropping the
    # old table would cascade-delete every child row. The pragma is a no-op inside a
    # transaction, so it goes off before the migration's transaction begins.
    connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    connection.commit()
    try:
        # One real transaction around all of it: the sqlite3 driver would otherwise run the
        # DDL outside any transaction, and a failure would leave a half-migrated database.
        # Begun before configure(), so Alembic treats it as external and leaves it to us.
        with connection.begin():
            connection.exec_driver_sql("BEGIN")
            _configure(connection, sqlite=True)
            context.run_migrations()
            broken = connection.execute(text("PRAGMA foreign_key_check")).fetchall()
            if broken:
                msg = f"migration left rows with broken foreign keys (rolled back): {broken[:5]}"
                raise MigrationError(msg)
    finally:
        connection.exec_driver_sql("PRAGMA foreign_keys=ON")
        connection.commit()


async def _run_online() -> None:
    engine = create_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_migrate)
            await connection.commit()
    finally:
        await engine.dispose()  # also when a migration fails, or the connection leaks


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
