"""Apply and inspect the Alembic history from code (CLI, server start-up, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from alembic import command
from core.db.engine import create_engine
from core.settings import to_async_url


def _scripts_dir() -> Path:
    """Where the Alembic history is: inside the installed package, else in the checkout."""
    # A wheel carries the top-level alembic/ as core.db.alembic (pyproject's package-dir); a
    # checkout (editable install, tests) has no such directory and reads alembic/ itself.
    installed = Path(__file__).resolve().parent / "alembic"
    if (installed / "env.py").is_file():
        return installed
    return Path(__file__).resolve().parents[2] / "alembic"


ALEMBIC_DIR = _scripts_dir()


def alembic_config(url: str) -> Config:
    """An Alembic config bound to ``url``, independent of the working directory."""
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    config.attributes["database_url"] = to_async_url(url)
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the schema up to ``revision``. Must not be called from a running event loop."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Take the schema down to ``revision``."""
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    """The newest revision the code knows."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


async def current_revision(url: str) -> str | None:
    """The revision the database is at, or None for an empty database."""

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    finally:
        await engine.dispose()


class SchemaOutOfDateError(RuntimeError):
    """The database schema is not the one the code was written for."""


class MigrationError(RuntimeError):
    """A migration would have left the database inconsistent, so it was rolled back."""


async def require_current_schema(url: str) -> None:
    """Refuse to go on unless the database is at the head revision."""
    have, want = await current_revision(url), head_revision()
    if have != want:
        msg = (
            f"database schema is at {have or 'nothing (empty database)'}, "
            f"this version needs {want}: run `precisionpulse db upgrade`"
        )
        raise SchemaOutOfDateError(msg)
