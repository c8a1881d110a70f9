"""Shared fixtures: a migrated database per backend, and the whole server in-process.

Every test that takes ``database_url`` runs on SQLite and, when PP_TEST_DATABASE_URL
points at a PostgreSQL server, on PostgreSQL too (in a database the suite creates and drops).
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from passlib.context import CryptContext
from sqlalchemy.engine import make_url

from core import edit_keys, hlc, passwords
from core.db import migrations
from core.db.engine import Database
from core.db.models import Base
from core.services import audit_checkpoints, roles
from core.settings import Settings
from tests.mqtt.broker import mosquitto  # noqa: F401  (a fixture for every test package)

PG_ENV = "PP_TEST_DATABASE_URL"
BACKENDS = ["sqlite", "postgresql"] if os.environ.get(PG_ENV) else ["sqlite"]


# Argon2 at the cost tests need to run the real algorithm, not at the cost that slows attackers:
# the production setting spends ~0.2 s per hash or check, and most server tests create two
# accounts and sign in (a minute and more of the suite). tests/core/test_passwords.py checks
# the production cost itself, under the marker below.
_TEST_ARGON2 = CryptContext(
    schemes=["argon2"],
    argon2__memory_cost=1024,  # KiB
    argon2__rounds=1,
    argon2__parallelism=1,
)
_TEST_DUMMY_HASH = _TEST_ARGON2.hash("not anyone's password")


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers of this conftest (pyproject.toml lists the project-wide ones)."""
    config.addinivalue_line(
        "markers", "production_argon2: hash passwords at the production cost, not the test one"
    )
    config.addinivalue_line(
        "markers",
        "backends(how): 'one' runs a database test on PostgreSQL alone when it is configured, "
        "'each' (the default) on every backend",
    )


@pytest.fixture(autouse=True)
def _cheap_password_hashing(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hash people's passwords, and derive their edit keys, with a cheap argon2 unless the
    test asks for the real cost (the station and the server in one process derive alike)."""
    if request.node.get_closest_marker("production_argon2") is None:
        monkeypatch.setattr(passwords, "_context", _TEST_ARGON2)
        monkeypatch.setattr(passwords, "_DUMMY_HASH", _TEST_DUMMY_HASH)
        monkeypatch.setattr(edit_keys, "TIME_COST", 1)
        monkeypatch.setattr(edit_keys, "MEMORY_KIB", 1024)
        monkeypatch.setattr(edit_keys, "PARALLELISM", 1)


@pytest.fixture(autouse=True)
def _fresh_server_clock() -> None:
    """Each test starts the server's HLC afresh: a test whose skewed stations pushed it
    minutes ahead (as a fast station clock may) must not stamp the next test's changes."""
    hlc.configure("server")


@pytest.fixture(autouse=True)
def _settled_heap() -> Iterator[None]:
    """After each test, freeze what survived it, so later full collections skip it.

    NiceGUI's test harness collects garbage twice per app it builds, and FastAPI ties each
    router it includes to the app it was included in: every app a test builds (with our
    module-level routers) stays reachable, ~10k objects each. A full collection then walks
    them all, and its cost grew with every test (0.4 s after 40 tests, 0.7 s after 80: the
    suite's setups and teardowns doubled). Frozen survivors are never walked again; what a
    test leaves behind is already unreachable or kept anyway.
    """
    yield
    gc.freeze()


def _backends(item: pytest.Item) -> str:
    """``one`` or ``each``: on how many backends a test of ``database_url`` should run."""
    marker = item.get_closest_marker("backends")
    return str(marker.args[0]) if marker is not None else "each"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run some tests on PostgreSQL only, when it is configured (else on SQLite).

    ``production_database`` tests take seconds each (brokers killed, stations restarted); the
    SQLite store they would also exercise is covered by the quicker ingest and outbox tests on
    both backends. ``backends("one")`` tests check what a user sees of the API or the pages,
    which the database does not change; tests of storage, migrations, ingest, history and
    constraint races run on each backend (the default, or ``backends("each")`` to override
    a module's mark).
    """
    if "postgresql" not in BACKENDS:
        return
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_sqlite = callspec is not None and callspec.params.get("database_url") == "sqlite"
        heavy = item.get_closest_marker("production_database") is not None
        one = _backends(item) == "one"
        (dropped if on_sqlite and (heavy or one) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def _dsn(url: str, database: str) -> str:
    parsed = make_url(url).set(drivername="postgresql", database=database)
    return parsed.render_as_string(hide_password=False)


async def _admin_sql(url: str, sql: str) -> None:
    connection = await asyncpg.connect(_dsn(url, make_url(url).database or "postgres"))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    base = os.environ[PG_ENV]
    name = f"pp_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin_sql(base, f'CREATE DATABASE "{name}"'))
    try:
        yield _dsn(base, name)
    finally:
        asyncio.run(_admin_sql(base, f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that each test copies (copying beats migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrations.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_migrated(pg_server_url: str) -> str:
    """The session's PostgreSQL database, migrated to head."""
    migrations.upgrade(pg_server_url)
    return pg_server_url


# Truncation order does not matter with CASCADE; alembic_version stays.
_PG_TABLES = ", ".join(Base.metadata.tables)  # every table of the model, none forgotten
# The audit log refuses TRUNCATE (in every replication role): the suite lifts its guards
# for the one statement, inside a transaction that puts them back (ENABLE ALWAYS) at once.
_PG_EMPTY = (
    "BEGIN; ALTER TABLE audit_log DISABLE TRIGGER USER; "
    f"TRUNCATE {_PG_TABLES} RESTART IDENTITY CASCADE; "
    "ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_append_only; "
    "ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate; COMMIT"
)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database on each backend."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "test.db"
        shutil.copy(template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("pg_migrated")
    asyncio.run(_admin_sql(url, _PG_EMPTY))
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings pointing at the test database, with a signing key of the test's own."""
    return Settings(
        database_url=database_url,
        login_lock_seconds=1,
        mqtt_url="",
        signing_key_file=tmp_path / "keys" / "server-signing-key.pem",
    )


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[Database]:
    """An open database with the built-in roles in place, keyed like the test's server."""
    audit_key = audit_checkpoints.load_or_create_key(audit_checkpoints.key_path(settings))
    database = Database(settings.async_database_url, audit_key=audit_key)
    async with database.session() as session:
        await roles.ensure_builtins(session)
    yield database
    await database.close()
