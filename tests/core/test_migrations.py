"""The Alembic history on both backends: round trip, no drift, triggers, the SQLite traps.

Every test gets a database of its own that nothing has migrated yet: a temporary file on
SQLite, and on PostgreSQL (when PP_TEST_DATABASE_URL is set) a database created for the
test on that server and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.command import upgrade as alembic_upgrade
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError

from core.db import migrations
from core.db.engine import Database, create_engine
from core.db.models import (
    AuditEntry,
    Base,
    Role,
    SyncChange,
    TelemetryRollup,
    TelemetrySample,
    User,
    UserRole,
)
from core.db.types import ExactDecimal, UtcDateTime
from core.services import audit, roles, users

PG_ENV = "PP_TEST_DATABASE_URL"
BACKENDS = ["sqlite", "postgresql"] if os.environ.get(PG_ENV) else ["sqlite"]
TABLES = set(Base.metadata.tables)


# --- helpers -------------------------------------------------------------------------------


def _dsn(url: str, database: str) -> str:
    parsed = make_url(url).set(drivername="postgresql", database=database)
    return parsed.render_as_string(hide_password=False)


async def _admin_sql(sql: str) -> None:
    base = os.environ[PG_ENV]
    connection = await asyncpg.connect(_dsn(base, make_url(base).database or "postgres"))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _with_connection(url: str, work: Callable[[Connection], Any]) -> Any:
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            result = await connection.run_sync(work)
            await connection.commit()
            return result
    finally:
        await engine.dispose()


def on_db(url: str, work: Callable[[Connection], Any]) -> Any:
    """Run ``work`` on a sync view of an async connection, committing if it succeeds."""
    return asyncio.run(_with_connection(url, work))


def table_names(url: str) -> set[str]:
    """The tables of the schema, PostgreSQL's partitions (of telemetry_samples) left out."""

    def read(connection: Connection) -> set[str]:
        names = set(inspect(connection).get_table_names())
        if connection.dialect.name == "postgresql":
            names -= set(
                connection.scalars(text("SELECT relname FROM pg_class WHERE relispartition"))
            )
        return names

    return set(on_db(url, read))


def audit_guards(url: str) -> set[str]:
    """The append-only triggers (on PostgreSQL with when they fire, and their function)."""

    def read(connection: Connection) -> set[str]:
        if connection.dialect.name == "sqlite":
            sql = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
            return set(connection.scalars(text(sql)))
        # tgenabled: 'O' fires in the origin role only, 'A' in every session_replication_role.
        sql = "SELECT tgname, tgenabled::text FROM pg_trigger WHERE NOT tgisinternal"
        triggers = connection.execute(text(sql)).all()
        functions = connection.scalars(
            text("SELECT proname FROM pg_proc WHERE proname = 'audit_log_append_only'")
        )
        return {f"trigger {t} {e}" for t, e in triggers} | {f"function {f}" for f in functions}

    return on_db(url, read)


def add_user_with_role(
    url: str, *, username: str = "keeper", audit_key: bytes | None = None
) -> None:
    async def work() -> None:
        database = Database(url, audit_key=audit_key)
        try:
            async with database.session() as session:
                await roles.ensure_builtins(session)
                await users.bootstrap_user(
                    session, username=username, password="long-enough-password", roles=["Admin"]
                )
        finally:
            await database.close()

    asyncio.run(work())


def add_legacy_entries(connection: Connection, count: int) -> None:
    """Audit rows as the code before revision 0004 chained them: plain SHA-256, no scheme."""
    prev = "0" * 64
    for n in range(count):
        at = datetime.now(UTC)
        body: dict[str, Any] = {"prev": prev, "at": at.isoformat()}
        body |= {"actor": "old", "action": "legacy.step"}
        body |= {"target_type": "", "target_id": str(n), "before": None, "after": {"n": n}}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        row = body | {"at": at, "prev_hash": prev, "hash": digest}
        del row["prev"]
        connection.execute(insert(AuditEntry).values(**row))
        prev = digest


def count(url: str, table: Any) -> int:
    return on_db(url, lambda c: c.scalar(select(func.count()).select_from(table)))


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"


@pytest.fixture(params=BACKENDS)
def blank_url(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[str]:
    """An empty database no migration has touched, on each backend."""
    if request.param == "sqlite":
        yield sqlite_url
        return
    name = f"pp_migtest_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin_sql(f'CREATE DATABASE "{name}"'))
    try:
        yield _dsn(os.environ[PG_ENV], name)
    finally:
        asyncio.run(_admin_sql(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
def migrated_url(blank_url: str) -> str:
    migrations.upgrade(blank_url)
    return blank_url


def scratch_history(tmp_path: Path, upgrade_body: str) -> Path:
    """A copy of the real env.py and history plus a throwaway revision 9999 after head."""
    scripts = tmp_path / "alembic"
    shutil.copytree(migrations.ALEMBIC_DIR, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    head = migrations.head_revision()
    revision = (
        '"""throwaway revision for a test"""\n'
        "import sqlalchemy as sa\n"
        "from alembic import op\n\n"
        f'revision = "9999"\ndown_revision = "{head}"\n'
        "branch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade() -> None:\n{upgrade_body}\n\n"
        "def downgrade() -> None:\n    pass\n"
    )
    (scripts / "versions" / "9999_scratch.py").write_text(revision)
    return scripts


def upgrade_with(scripts: Path, url: str) -> None:
    config = migrations.alembic_config(url)
    config.set_main_option("script_location", str(scripts))
    alembic_upgrade(config, "head")


# --- the history ---------------------------------------------------------------------------


def test_upgrade_downgrade_upgrade_round_trip(blank_url: str) -> None:
    migrations.upgrade(blank_url)
    assert table_names(blank_url) == TABLES | {"alembic_version"}
    assert asyncio.run(migrations.current_revision(blank_url)) == migrations.head_revision()

    migrations.downgrade(blank_url, "base")
    assert table_names(blank_url) == {"alembic_version"}
    assert asyncio.run(migrations.current_revision(blank_url)) is None

    migrations.upgrade(blank_url)
    assert table_names(blank_url) == TABLES | {"alembic_version"}
    assert asyncio.run(migrations.current_revision(blank_url)) == migrations.head_revision()


def test_migrated_schema_matches_the_models(migrated_url: str) -> None:
    """What autogenerate would write next is nothing at all, on either backend.

    PostgreSQL's day partitions of telemetry_samples are data, made at run time: not schema;
    an index the model makes on one dialect only (``ddl_if``) is compared on that one.
    """

    def diff(connection: Connection) -> list[Any]:
        def include(item: Any, name: str | None, kind: str, *_: Any) -> bool:
            if kind == "table" and re.fullmatch(r"telemetry_samples_\d{8}", name or ""):
                return False
            only = getattr(item, "_ddl_if", None)
            return only is None or only.dialect in (None, connection.dialect.name)

        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "compare_server_default": True,
                "target_metadata": Base.metadata,
                "include_object": include,
            },
        )
        return compare_metadata(context, Base.metadata)

    assert on_db(migrated_url, diff) == []


# --- the append-only audit log -------------------------------------------------------------


def test_audit_log_refuses_update_and_delete(migrated_url: str) -> None:
    table = AuditEntry.__table__
    on_db(
        migrated_url,
        lambda c: c.execute(
            insert(table).values(actor="t", action="a", prev_hash="0" * 64, hash="1" * 64)
        ),
    )
    for statement in (update(table).values(actor="forger"), delete(table)):
        with pytest.raises(DBAPIError, match="append-only"):
            on_db(migrated_url, lambda c, s=statement: c.execute(s))
    assert on_db(migrated_url, lambda c: c.scalar(select(table.c.actor))) == "t"


def test_audit_guards_come_and_go_with_the_schema(blank_url: str) -> None:
    migrations.upgrade(blank_url)
    sqlite = make_url(blank_url).get_backend_name() == "sqlite"
    if sqlite:
        expected = {"audit_log_no_update", "audit_log_no_delete"}
    else:
        expected = {
            "trigger audit_log_append_only A",
            "trigger audit_log_no_truncate A",
            "function audit_log_append_only",
        }
    assert audit_guards(blank_url) == expected

    migrations.downgrade(blank_url, "0003")  # before the keyed chain: 0001's guards alone
    if sqlite:
        assert audit_guards(blank_url) == expected
    else:
        assert audit_guards(blank_url) == {
            "trigger audit_log_append_only O",
            "function audit_log_append_only",
        }

    migrations.downgrade(blank_url, "base")
    assert audit_guards(blank_url) == set()


def test_audit_log_keeps_legacy_rows_verifiable(blank_url: str) -> None:
    """Rows chained with plain SHA-256 before 0004 are marked so and still verify after it."""
    migrations.upgrade(blank_url, "0003")
    on_db(blank_url, lambda c: add_legacy_entries(c, 3))
    migrations.upgrade(blank_url)
    add_user_with_role(blank_url, username="keyed", audit_key=b"k" * 32)

    schemes = on_db(blank_url, lambda c: list(c.scalars(text("SELECT scheme FROM audit_log"))))
    assert schemes[0] == "sha256" and schemes[-1] == "hmac-sha256"

    async def verify() -> audit.ChainReport:
        database = Database(blank_url, audit_key=b"k" * 32)
        try:
            async with database.session() as session:
                return await audit.verify_chain(session)
        finally:
            await database.close()

    report = asyncio.run(verify())
    assert (report.status, report.rows, report.last_legacy_id) == (
        audit.ChainStatus.INTACT,
        len(schemes),
        schemes.count("sha256"),
    )


# --- refusing to run against the wrong schema ----------------------------------------------


def test_require_current_schema(blank_url: str) -> None:
    with pytest.raises(migrations.SchemaOutOfDateError, match=r"precisionpulse db upgrade"):
        asyncio.run(migrations.require_current_schema(blank_url))

    migrations.upgrade(blank_url)
    asyncio.run(migrations.require_current_schema(blank_url))

    migrations.downgrade(blank_url, "base")
    with pytest.raises(migrations.SchemaOutOfDateError, match=r"precisionpulse db upgrade"):
        asyncio.run(migrations.require_current_schema(blank_url))


def test_require_current_schema_refuses_an_unknown_revision(migrated_url: str) -> None:
    """A database migrated by newer code is not at this code's head either."""
    on_db(migrated_url, lambda c: c.execute(text("UPDATE alembic_version SET version_num = 'f00'")))
    with pytest.raises(migrations.SchemaOutOfDateError, match=r"at f00.*db upgrade"):
        asyncio.run(migrations.require_current_schema(migrated_url))


# --- SQLite: batch rebuilds must not cascade -----------------------------------------------

REBUILD_ROLES = (
    '    with op.batch_alter_table("roles", recreate="always") as batch:\n'
    '        batch.add_column(sa.Column("note", sa.String(32), nullable=True))\n'
)


def _rebuild_roles(connection: Connection) -> None:
    """What a batch migration does to ``roles`` on SQLite: copy, drop, rename."""
    context = MigrationContext.configure(connection, opts={"render_as_batch": True})
    with (
        Operations.context(context) as op,
        op.batch_alter_table("roles", recreate="always") as batch,
    ):
        batch.add_column(Column("note", String(32), nullable=True))


@pytest.mark.parametrize("foreign_keys", ["OFF", "ON"])
def test_sqlite_batch_rebuild_cascades_unless_foreign_keys_are_off(
    sqlite_url: str, foreign_keys: str
) -> None:
    """The trap env.py avoids: dropping the old ``roles`` deletes every user_roles row."""
    migrations.upgrade(sqlite_url)
    add_user_with_role(sqlite_url)
    assert count(sqlite_url, UserRole) == 1

    def migrate(connection: Connection) -> None:
        # env.py's approach: the pragma set outside any transaction, then the migration.
        connection.exec_driver_sql(f"PRAGMA foreign_keys={foreign_keys}")
        connection.commit()
        _rebuild_roles(connection)
        connection.commit()

    on_db(sqlite_url, migrate)
    columns = on_db(sqlite_url, lambda c: [col["name"] for col in inspect(c).get_columns("roles")])
    assert "note" in columns, "the roles table was not rebuilt"
    assert count(sqlite_url, Role) > 0
    assert count(sqlite_url, User) == 1
    # The connection pool turns foreign keys back on for every new connection.
    assert on_db(sqlite_url, lambda c: c.exec_driver_sql("PRAGMA foreign_keys").scalar()) == 1
    if foreign_keys == "OFF":
        assert count(sqlite_url, UserRole) == 1
    else:
        assert count(sqlite_url, UserRole) == 0  # this is what env.py must prevent


def test_env_py_batch_rebuild_keeps_child_rows(sqlite_url: str, tmp_path: Path) -> None:
    """A real revision after head, run through the real env.py, rebuilds roles safely."""
    migrations.upgrade(sqlite_url)
    add_user_with_role(sqlite_url)

    upgrade_with(scratch_history(tmp_path, REBUILD_ROLES), sqlite_url)

    assert asyncio.run(migrations.current_revision(sqlite_url)) == "9999"
    columns = on_db(sqlite_url, lambda c: [col["name"] for col in inspect(c).get_columns("roles")])
    assert "note" in columns
    assert count(sqlite_url, UserRole) == 1
    assert on_db(sqlite_url, lambda c: c.exec_driver_sql("PRAGMA foreign_keys").scalar()) == 1


def test_env_py_rolls_back_a_revision_that_breaks_foreign_keys(
    sqlite_url: str, tmp_path: Path
) -> None:
    """With the pragma off nothing stops a dangling reference, so env.py checks and undoes."""
    migrations.upgrade(sqlite_url)
    add_user_with_role(sqlite_url)
    dangling = REBUILD_ROLES + "    op.execute(\"UPDATE user_roles SET role_id = X'00'\")\n"
    with pytest.raises(migrations.MigrationError, match="broken foreign keys"):
        upgrade_with(scratch_history(tmp_path, dangling), sqlite_url)

    # All of it was undone, the DDL of the table rebuild included.
    assert asyncio.run(migrations.current_revision(sqlite_url)) == migrations.head_revision()
    columns = on_db(sqlite_url, lambda c: [col["name"] for col in inspect(c).get_columns("roles")])
    assert "note" not in columns
    assert on_db(sqlite_url, lambda c: c.execute(text("PRAGMA foreign_key_check")).all()) == []
    assert count(sqlite_url, UserRole) == 1


def test_env_py_rolls_back_a_failing_revision(blank_url: str, tmp_path: Path) -> None:
    """A revision that fails halfway leaves the database as it was, on both backends."""
    migrations.upgrade(blank_url)
    failing = (
        '    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))\n'
        '    op.execute("SELECT * FROM no_such_table")\n'
    )
    with pytest.raises(DBAPIError):
        upgrade_with(scratch_history(tmp_path, failing), blank_url)
    assert "half_done" not in table_names(blank_url)
    assert asyncio.run(migrations.current_revision(blank_url)) == migrations.head_revision()


def test_existing_synced_rows_become_the_first_entries_of_the_sync_log(blank_url: str) -> None:
    """0006 seeds the log, so a station pulling from cursor 0 receives everyone who existed."""
    migrations.upgrade(blank_url, "0005")
    user_id, stamp = uuid.uuid4(), "001764000000000.000000.server"

    def seed(connection: Connection) -> None:
        connection.execute(
            insert(User).values(
                id=user_id,
                username="olga",
                display_name="Olga",
                password_hash="$argon2id$x",
                is_active=False,
                failed_logins=0,
                created_at=datetime.now(UTC),
                updated_at=stamp,
                deleted=False,
            )
        )

    on_db(blank_url, seed)
    migrations.upgrade(blank_url)

    def logged(connection: Connection) -> dict[str, Any]:
        columns = (SyncChange.field, SyncChange.value, SyncChange.stamp, SyncChange.cursor)
        rows = connection.execute(select(*columns).where(SyncChange.key == str(user_id)))
        return {r.field: (r.value, r.stamp, r.cursor) for r in rows}

    fields = on_db(blank_url, logged)
    assert {f: v for f, (v, _, _) in fields.items()} == {
        "username": "olga",
        "display_name": "Olga",
        "password_hash": "$argon2id$x",
        "is_active": False,
        "deleted": False,
    }
    assert {s for _, s, _ in fields.values()} == {stamp}
    assert sorted(c for _, _, c in fields.values()) == list(range(1, 6))


# --- 0008: telemetry as one row per sample, with rollups ------------------------------------

OLD_TELEMETRY = Table(
    "telemetry",
    MetaData(),
    Column("device_id", String(64), primary_key=True),
    Column("stream", String(64), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("channel", String(64), primary_key=True),
    Column("ts", UtcDateTime(timezone=True)),
    Column("value_int", BigInteger),
    Column("value_dec", ExactDecimal()),
    Column("value_bool", Boolean),
    Column("replayed", Boolean),
    Column("received_at", UtcDateTime(timezone=True)),
)
DAY = datetime(2025, 3, 1, tzinfo=UTC)  # far from today: its partition comes from the data
RECEIVED = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
# (device, stream, seq, seconds after DAY, replayed, {channel: value})
OLD_SAMPLES = [
    ("press-07", "s1", 1, 5.25, False, {"temp": Decimal("41.3750"), "parts": 1289, "door": False}),
    ("press-07", "s1", 2, 35, False, {"temp": Decimal("41.38"), "parts": 2**63 - 1, "door": True}),
    ("press-07", "s1", 3, 62, True, {"temp": Decimal("-0.0100"), "parts": 1290, "door": True}),
    ("press-07", "s1", 4, 86_400 + 1, False, {"temp": Decimal("41"), "parts": 7}),  # next day
    ("lathe-1", "s9", 1, 59, True, {"parts": 3}),
]


def _old_rows() -> list[dict[str, Any]]:
    return [
        {
            "device_id": device,
            "stream": stream,
            "seq": seq,
            "channel": channel,
            "ts": DAY + timedelta(seconds=at),
            "value_int": value if type(value) is int else None,
            "value_dec": value if isinstance(value, Decimal) else None,
            "value_bool": value if isinstance(value, bool) else None,
            "replayed": replayed,
            "received_at": RECEIVED,
        }
        for device, stream, seq, at, replayed, values in OLD_SAMPLES
        for channel, value in values.items()
    ]


def _readings(values: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Channel, type and exact text of each value: what a conversion must keep."""
    return sorted((channel, type(v).__name__, str(v)) for channel, v in values.items())


def _exact(row: Any) -> tuple[Any, ...]:
    """A row with each decimal as its text, which keeps the scale == would ignore."""
    return tuple(str(v) if isinstance(v, Decimal) else v for v in row)


def test_0008_converts_telemetry_both_ways(blank_url: str) -> None:
    migrations.upgrade(blank_url, "0007")
    on_db(blank_url, lambda c: c.execute(insert(OLD_TELEMETRY), _old_rows()))
    migrations.upgrade(blank_url)

    def samples(connection: Connection) -> list[tuple[Any, ...]]:
        rows = connection.execute(select(TelemetrySample.__table__).order_by("device_id", "seq"))
        return [(*row[:4], _readings(row.readings), *row[5:]) for row in rows]

    assert on_db(blank_url, samples) == [
        (d, s, n, DAY + timedelta(seconds=at), _readings(v), r, RECEIVED)
        for d, s, n, at, r, v in sorted(OLD_SAMPLES)
    ]
    m0, m1, day2 = DAY, DAY + timedelta(minutes=1), DAY + timedelta(days=1)
    ts = [DAY + timedelta(seconds=s) for s in (5.25, 35, 62, 86_401, 59)]
    rollups = on_db(blank_url, lambda c: list(c.execute(select(TelemetryRollup.__table__))))
    # device, channel, minute, min, max, sum (their exact text), count, replayed, last_ts, kind
    assert sorted(_exact(row) for row in rollups) == [
        ("lathe-1", "parts", m0, "3", "3", "3", 1, 1, ts[4], "integer"),
        ("press-07", "door", m0, "0", "1", "1", 2, 0, ts[1], "boolean"),
        ("press-07", "door", m1, "1", "1", "1", 1, 1, ts[2], "boolean"),
        (
            "press-07",
            "parts",
            m0,
            "1289",
            str(2**63 - 1),
            str(2**63 + 1288),
            2,
            0,
            ts[1],
            "integer",
        ),
        ("press-07", "parts", m1, "1290", "1290", "1290", 1, 1, ts[2], "integer"),
        ("press-07", "parts", day2, "7", "7", "7", 1, 0, ts[3], "integer"),
        ("press-07", "temp", m0, "41.3750", "41.38", "82.7550", 2, 0, ts[1], "decimal"),
        ("press-07", "temp", m1, "-0.0100", "-0.0100", "-0.0100", 1, 1, ts[2], "decimal"),
        ("press-07", "temp", day2, "41", "41", "41", 1, 0, ts[3], "decimal"),
    ]
    if make_url(blank_url).get_backend_name() == "postgresql":
        names = on_db(blank_url, lambda c: set(c.scalars(text("SELECT relname FROM pg_class"))))
        assert {"telemetry_samples_20250301", "telemetry_samples_20250302"} <= names

    migrations.downgrade(blank_url, "0007")
    columns = [OLD_TELEMETRY.c[name] for name in _old_rows()[0]]
    back = on_db(blank_url, lambda c: [_exact(r) for r in c.execute(select(*columns))])
    assert sorted(back) == sorted(_exact(row.values()) for row in _old_rows())
