"""Rewriting the audit chain behind the server's back: with database access alone, it shows.

The attacker here can run any SQL as the table's owner (lifting the append-only triggers
for a moment) but holds neither the audit key nor the server's signing key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from core.db.engine import Database
from core.db.models import AuditEntry
from core.protocol.signing import generate_signing_key, load_or_create
from core.services import audit
from core.services.audit import ChainStatus
from core.services.audit_checkpoints import (
    AuditTrail,
    CheckpointLog,
    checkpoint_path,
    load_or_create_key,
)
from core.settings import Settings

SQLITE_GUARDS = {
    "audit_log_no_update": "UPDATE",
    "audit_log_no_delete": "DELETE",
}


async def _record_some(database: Database, count: int) -> list[AuditEntry]:
    for n in range(count):
        async with database.session() as session:
            await audit.record(
                session, actor="ada", action="test.step", target_id=str(n), after={"n": n}
            )
    async with database.session() as session:
        return list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def _trail(database: Database, settings: Settings) -> AuditTrail:
    key = load_or_create(settings.signing_key_file)
    return AuditTrail(database, CheckpointLog(checkpoint_path(settings), key))


async def _as_owner(database: Database, *statements: str) -> None:
    """Run ``statements`` with the append-only guards lifted, as the table's owner could."""
    async with database.session() as session:
        if database.dialect == "postgresql":
            await session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            for name in SQLITE_GUARDS:
                await session.execute(text(f"DROP TRIGGER {name}"))
        for statement in statements:
            await session.execute(text(statement))
        if database.dialect == "postgresql":
            for name in ("audit_log_append_only", "audit_log_no_truncate"):
                await session.execute(text(f"ALTER TABLE audit_log ENABLE ALWAYS TRIGGER {name}"))
        else:
            for name, verb in SQLITE_GUARDS.items():
                await session.execute(
                    text(
                        f"CREATE TRIGGER {name} BEFORE {verb} ON audit_log "
                        "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END"
                    )
                )


def _sha256_rechain(rows: list[AuditEntry], start: int, *, downgrade: bool) -> list[str]:
    """UPDATEs that rehash ``rows[start:]`` with plain SHA-256, as anyone without the key can."""
    prev = rows[start - 1].hash if start else audit.GENESIS
    statements = []
    for row in rows[start:]:
        body = {
            "prev": prev,
            "at": row.at.isoformat(),
            "actor": row.actor,
            "action": row.action,
            "target_type": row.target_type,
            "target_id": row.target_id,
            "before": row.before,
            "after": row.after,
        }
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        scheme = ", scheme = 'sha256'" if downgrade else ""
        after = json.dumps(row.after).replace("'", "''")
        statements.append(
            f"UPDATE audit_log SET after = '{after}', prev_hash = '{prev}', "
            f"hash = '{digest}'{scheme} WHERE id = {row.id}"
        )
        prev = digest
    return statements


@pytest.fixture
def pg(database: Database) -> Database:
    """The test database, on PostgreSQL only."""
    if database.dialect != "postgresql":
        pytest.skip("needs PostgreSQL (PP_TEST_DATABASE_URL)")
    return database


# --- the database refuses ------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("role", ["origin", "replica"])
@pytest.mark.parametrize(
    "statement", ["TRUNCATE audit_log", "DELETE FROM audit_log", "UPDATE audit_log SET actor = 'x'"]
)
async def test_postgres_refuses_truncate_and_replica_writes(
    pg: Database, role: str, statement: str
) -> None:
    """TRUNCATE fires no row trigger and replica mode silences ordinary ones: both refused."""
    await _record_some(pg, 2)
    with pytest.raises(DBAPIError, match="append-only"):
        async with pg.session() as session:
            await session.execute(text(f"SET LOCAL session_replication_role = {role}"))
            await session.execute(text(statement))
    async with pg.session() as session:
        assert set(await session.scalars(select(AuditEntry.actor))) == {"ada"}
        assert (await audit.head(session))[1] == 2


# --- removed entries show against the signed checkpoint ------------------------------------


@pytest.mark.postgres
async def test_a_removed_tail_shows_as_shortened(pg: Database, settings: Settings) -> None:
    rows = await _record_some(pg, 5)
    trail = _trail(pg, settings)
    assert (await trail.verify()).status is ChainStatus.CHECKPOINT_MISSING  # the first one
    assert (await trail.verify()).status is ChainStatus.INTACT

    await _as_owner(pg, f"DELETE FROM audit_log WHERE id > {rows[2].id}")

    report = await trail.verify()
    assert (report.status, report.intact, report.rows) == (ChainStatus.SHORTENED, False, 3)
    assert f"saw entry #{rows[4].id} (hash {rows[4].hash[:16]}" in report.detail
    assert f"ends at #{rows[2].id} (3 entries)" in report.detail
    # Entries written afterwards do not make it whole again.
    await _record_some(pg, 3)
    assert (await trail.verify()).status is ChainStatus.SHORTENED


@pytest.mark.postgres
async def test_an_emptied_table_shows_as_emptied(pg: Database, settings: Settings) -> None:
    await _record_some(pg, 4)
    trail = _trail(pg, settings)
    await trail.verify()

    await _as_owner(pg, "TRUNCATE audit_log")

    report = await trail.verify()
    assert (report.status, report.rows) == (ChainStatus.EMPTIED, 0)
    assert "4 entries, the table has none" in report.detail


async def test_a_shortened_chain_shows_on_either_backend(
    database: Database, settings: Settings
) -> None:
    rows = await _record_some(database, 4)
    trail = _trail(database, settings)
    await trail.verify()
    await _as_owner(database, f"DELETE FROM audit_log WHERE id = {rows[3].id}")
    assert (await trail.verify()).status is ChainStatus.SHORTENED
    await _as_owner(database, "DELETE FROM audit_log")
    assert (await trail.verify()).status is ChainStatus.EMPTIED


# --- rewritten entries show where they were rewritten --------------------------------------


@pytest.mark.parametrize("downgrade", [False, True], ids=["keyed-label", "sha256-label"])
async def test_an_edit_rechained_without_the_key_is_caught_at_that_entry(
    database: Database, settings: Settings, downgrade: bool
) -> None:
    """The forger edits entry 3 and rehashes it and every later one with plain SHA-256."""
    rows = await _record_some(database, 5)
    trail = _trail(database, settings)
    await trail.verify()
    rows[2].after = {"n": 99}

    await _as_owner(database, *_sha256_rechain(rows, 2, downgrade=downgrade))

    report = await trail.verify()
    assert (report.status, report.first_bad_id) == (ChainStatus.TAMPERED, rows[2].id)
    assert f"entry #{rows[2].id}" in report.detail


async def test_a_whole_chain_relabelled_unkeyed_is_caught_at_its_first_entry(
    database: Database, settings: Settings
) -> None:
    """The checkpoint pinned 'no unkeyed entries', so a forger cannot claim they all were."""
    rows = await _record_some(database, 3)
    trail = _trail(database, settings)
    await trail.verify()

    await _as_owner(database, *_sha256_rechain(rows, 0, downgrade=True))

    report = await trail.verify()
    assert (report.status, report.first_bad_id) == (ChainStatus.TAMPERED, rows[0].id)
    assert "unkeyed" in report.detail


async def test_an_entry_appended_without_the_key_is_caught(
    database: Database, settings: Settings
) -> None:
    await _record_some(database, 2)
    trail = _trail(database, settings)
    await trail.verify()
    keyless = Database(str(database.engine.url))
    try:
        async with keyless.session() as session:
            forged = await audit.record(session, actor="mallory", action="user.create")
    finally:
        await keyless.close()

    report = await trail.verify()
    assert (report.status, report.first_bad_id) == (ChainStatus.TAMPERED, forged.id)


# --- the checkpoint file itself -------------------------------------------------------------


async def test_a_forged_checkpoint_is_reported_invalid(
    database: Database, settings: Settings
) -> None:
    """A checkpoint signed by any key but the server's (say, the forger's own) is refused."""
    await _record_some(database, 2)
    trail = _trail(database, settings)
    await trail.verify()
    path = checkpoint_path(settings)
    assert path.stat().st_mode & 0o777 == 0o600
    real = CheckpointLog(path, load_or_create(settings.signing_key_file)).latest()
    assert real is not None

    CheckpointLog(path, generate_signing_key()).append(real)

    report = await trail.verify()
    assert report.status is ChainStatus.CHECKPOINT_INVALID
    assert "unknown kid" in report.detail


async def test_a_truncated_checkpoint_line_is_reported_invalid(
    database: Database, settings: Settings
) -> None:
    await _record_some(database, 1)
    trail = _trail(database, settings)
    await trail.verify()
    path = checkpoint_path(settings)
    path.write_bytes(path.read_bytes()[:-20] + b"\n")
    assert (await trail.verify()).status is ChainStatus.CHECKPOINT_INVALID


def test_the_audit_key_is_made_once_and_private(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "audit-key"
    key = load_or_create_key(path)
    assert len(key) == 32 and path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(path) == key
    path.write_text("abcd\n")
    with pytest.raises(ValueError, match="needs at least 32"):
        load_or_create_key(path)
