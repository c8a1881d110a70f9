"""The sync change log: every synced write is logged field by field and sequenced in order."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from core import rbac
from core.db.engine import Database
from core.db.models import SyncChange, User
from core.rbac import VIEWER
from core.services import device_configs, devices, sync_log, users
from core.services.users import console_actor

ADMIN = console_actor("ada")


@pytest.fixture(autouse=True)
async def _an_admin(database: Database) -> None:
    async with database.session() as session:
        await users.create_user(
            session, actor=ADMIN, username="root", password="long enough", roles=[rbac.ADMIN]
        )


async def _sequenced(database: Database) -> int:
    async with database.session() as session:
        return await sync_log.sequence(session)


async def _fields(database: Database, entity: str, key: str) -> dict[str, object]:
    async with database.session() as session:
        return await sync_log.fields_of(session, entity, key)


async def test_a_new_user_is_logged_with_every_field_and_its_role(database: Database) -> None:
    async with database.session() as session:
        user = await users.create_user(
            session, actor=ADMIN, username="olga", password="long enough", roles=[VIEWER]
        )
    logged = await _fields(database, "user", str(user.id))
    assert logged["username"] == "olga"
    assert logged["is_active"] is True and logged["deleted"] is False
    assert str(logged["password_hash"]).startswith("$argon2")
    async with database.session() as session:
        links = list(
            await session.scalars(
                select(SyncChange).where(
                    SyncChange.entity == "user_role", SyncChange.key.startswith(str(user.id))
                )
            )
        )
    assert [(r.field, r.value) for r in links] == [("deleted", False)]


async def test_an_edit_logs_only_what_changed_at_the_rows_new_stamp(database: Database) -> None:
    async with database.session() as session:
        user = await users.create_user(
            session, actor=ADMIN, username="olga", password="long enough", roles=[VIEWER]
        )
    async with database.session() as session:
        await users.update_user(session, actor=ADMIN, user_id=user.id, display_name="Olga K.")
    async with database.session() as session:
        rows = list(
            await session.scalars(
                select(SyncChange).where(SyncChange.key == str(user.id)).order_by(SyncChange.id)
            )
        )
        stored = await session.get(User, user.id)
    assert rows[-1].field == "display_name" and rows[-1].value == "Olga K."
    assert [r.field for r in rows].count("display_name") == 2  # created "", then edited
    assert stored is not None and rows[-1].stamp == stored.updated_at
    assert rows[-1].stamp > rows[0].stamp


async def test_sequencing_orders_by_commit_and_pages_resume(database: Database) -> None:
    head = await _sequenced(database)
    assert head > 0  # the built-in roles and permissions
    async with database.session() as session:
        await users.create_user(
            session, actor=ADMIN, username="olga", password="long enough", roles=[VIEWER]
        )
    new_head = await _sequenced(database)
    assert new_head > head
    assert await _sequenced(database) == new_head  # nothing new: nothing sequenced twice
    async with database.session() as session:
        first = await sync_log.page(session, device_id="press-1", after=0, limit=5)
        rest = await sync_log.page(session, device_id="press-1", after=first.cursor)
    assert first.more and len(first.changes) == 5 and first.cursor == 5
    assert not rest.more and rest.cursor == new_head
    assert len(first.changes) + len(rest.changes) == new_head


async def test_a_devices_configuration_goes_only_to_that_device(database: Database) -> None:
    async with database.session() as session:
        for device_id in ("press-1", "press-2"):
            await devices.create_device(session, actor=ADMIN, device_id=device_id)
    async with database.session() as session:
        await device_configs.update_desired(
            session, actor=ADMIN, device_id="press-1", changes={"interval_s": 5.0}
        )
    await _sequenced(database)
    async with database.session() as session:
        mine = await sync_log.page(session, device_id="press-1", after=0)
        theirs = await sync_log.page(session, device_id="press-2", after=0)
    configs = [(c.key, c.field, c.value) for c in mine.changes if c.entity == "device_config"]
    assert ("press-1", "desired.interval_s", 5.0) in configs
    assert not [c for c in theirs.changes if c.entity == "device_config" and c.key == "press-1"]


async def test_value_at_reads_the_field_as_it_was(database: Database) -> None:
    async with database.session() as session:
        user = await users.create_user(
            session, actor=ADMIN, username="olga", password="long enough", roles=[VIEWER]
        )
    async with database.session() as session:
        before = await sync_log.current(session, "user", str(user.id), "is_active")
    async with database.session() as session:
        await users.update_user(session, actor=ADMIN, user_id=user.id, is_active=False)
    async with database.session() as session:
        now = await sync_log.current(session, "user", str(user.id), "is_active")
        then = await sync_log.value_at(session, "user", str(user.id), "is_active", before.stamp)  # type: ignore[union-attr]
    assert before is not None and now is not None and then is not None
    assert (before.value, now.value, then.value) == (True, False, True)


async def test_concurrent_writers_get_distinct_cursors_in_one_sequence(database: Database) -> None:
    async def create(n: int) -> None:
        async with database.session() as session:
            await users.create_user(
                session, actor=ADMIN, username=f"u{n}", password="long enough", roles=[VIEWER]
            )

    await asyncio.gather(*(create(n) for n in range(6)))
    heads = await asyncio.gather(*(_sequenced(database) for _ in range(3)))
    async with database.session() as session:
        cursors = list(await session.scalars(select(SyncChange.cursor).order_by(SyncChange.id)))
    assert None not in cursors and sorted(cursors) == list(range(1, len(cursors) + 1))  # type: ignore[type-var]
    assert max(heads) == len(cursors)
