"""The audit log: a hash chain that shows tampering, kept append-only by the database."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from core.db.engine import Database
from core.db.models import AuditEntry
from core.services import audit


async def _record_some(database: Database, count: int) -> None:
    for n in range(count):
        async with database.session() as session:
            await audit.record(
                session, actor="ada", action="test.step", target_id=str(n), after={"n": n}
            )


async def test_chain_is_intact_after_several_records(database: Database) -> None:
    """Each row links to the one before; the walk finds every row and no fault."""
    await _record_some(database, 5)
    async with database.session() as session:
        report = await audit.verify_chain(session)
        rows = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    assert (report.rows, report.intact) == (5, True)
    assert rows[0].prev_hash == audit.GENESIS
    assert all(later.prev_hash == earlier.hash for earlier, later in itertools.pairwise(rows))


async def test_concurrent_writers_never_fork_the_chain(database: Database) -> None:
    """Transactions recording at once each chain onto the entry committed before them."""

    async def one(n: int) -> None:
        async with database.session() as session:
            await session.execute(select(AuditEntry.id).limit(1))  # a read first, as services do
            await asyncio.sleep(0)  # let the others read the same head
            await audit.record(session, actor="ada", action="test.race", target_id=str(n))

    await asyncio.gather(*(one(n) for n in range(20)))
    async with database.session() as session:
        report = await audit.verify_chain(session)
        rows = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    assert len({row.prev_hash for row in rows}) == 20  # no two entries share a predecessor
    assert (report.rows, report.intact) == (20, True)


async def test_an_edited_row_breaks_the_chain_there(database: Database) -> None:
    """Changing one row's ``after`` (in memory, never written) is caught at that row."""
    await _record_some(database, 4)
    async with database.session() as session:
        rows = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        with session.no_autoflush:
            rows[2].after = {"n": 99}
            report = await audit.verify_chain(session)
        bad_id = rows[2].id
        session.expunge_all()  # never write the edit (the trigger would refuse it anyway)
    assert (report.intact, report.first_bad_id) == (False, bad_id)


async def test_a_broken_link_breaks_the_chain(database: Database) -> None:
    """A row whose prev_hash no longer names its predecessor (as after a deletion) is caught."""
    await _record_some(database, 3)
    async with database.session() as session:
        rows = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        with session.no_autoflush:
            rows[1].prev_hash = rows[0].prev_hash  # as if row 0 were gone
            report = await audit.verify_chain(session)
        bad_id = rows[1].id
        session.expunge_all()
    assert report.first_bad_id == bad_id


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"]
)
async def test_the_database_refuses_update_and_delete(database: Database, statement: str) -> None:
    """A trigger on either backend makes the table append-only."""
    await _record_some(database, 2)
    with pytest.raises(DBAPIError, match="append-only"):
        async with database.session() as session:
            await session.execute(text(statement))
    async with database.session() as session:
        assert (await audit.verify_chain(session)).rows == 2
        assert set(await session.scalars(select(AuditEntry.actor))) == {"ada"}
