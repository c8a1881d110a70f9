"""The sync change log: every synced write is logged field by field and sequenced in order."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, select

from core import hlc, rbac
from core.db.engine import Database
from core.db.models import SyncChange, User
from core.hlc import Stamp
from core.protocol.sync import FieldChange
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


# --- compaction and push rounds ----------------------------------------------------------

Field = tuple[str, str, str]
# Shared fields, and device_config fields scoped to their device: press-1 has more of its
# own than a small page holds, press-2 one, press-3 none.
SHARED: list[Field] = [("user", f"u{n}", "display_name") for n in range(4)]
SCOPED: list[Field] = [
    *(("device_config", "press-1", f"desired.s{n}") for n in range(3)),
    ("device_config", "press-2", "desired.s0"),
]
DEVICES = ("press-1", "press-2", "press-3")
State = dict[Field, tuple[str, Any]]  # field -> (stamp, value): what a replica holds


def _lww(changes: Iterable[FieldChange], state: State | None = None) -> State:
    """Apply changes as a replica does: per field, the higher stamp wins."""
    held = dict(state or {})
    for c in changes:
        field = (c.entity, c.key, c.field)
        if field not in held or c.stamp > held[field][0]:
            held[field] = (c.stamp, c.value)
    return held


async def _random_log(database: Database, entries: int, seed: int) -> int:
    """``entries`` changes to a few fields, stamps in no particular order; the head."""
    rng = random.Random(seed)
    async with database.session() as session:
        for n in range(entries):
            entity, key, field = rng.choice(SHARED + SCOPED)
            wall = rng.randrange(10**12, 10**12 + 10**6)  # any order; the counter keeps them apart
            change = FieldChange(entity, key, field, n, str(Stamp(wall, n, "node")))
            scope = key if entity == "device_config" else None
            sync_log.record(session, [change], origin="server", scope=scope)
    return await _sequenced(database)


async def _visible(database: Database, device_id: str, upto: int) -> list[FieldChange]:
    """Every logged change ``device_id`` may see up to cursor ``upto``, uncompacted."""
    async with database.session() as session:
        rows = await session.scalars(
            select(SyncChange).where(SyncChange.cursor <= upto).order_by(SyncChange.cursor)
        )
        return [
            FieldChange(r.entity, r.key, r.field, r.value, r.stamp)
            for r in rows
            if r.scope in (None, device_id)
        ]


async def test_a_field_changed_a_thousand_times_arrives_once_in_a_catch_up(
    database: Database,
) -> None:
    async with database.session() as session:
        olga = await users.create_user(
            session, actor=ADMIN, username="olga", password="long enough", roles=[VIEWER]
        )
    key = str(olga.id)
    names = [FieldChange("user", key, "display_name", f"Olga {n}", hlc.now()) for n in range(1000)]
    async with database.session() as session:
        for name in names:  # one edit each, as a thousand saves would log them
            sync_log.record(session, [name], origin="server")
    head = await _sequenced(database)
    async with database.session() as session:
        caught_up = await sync_log.page(session, device_id="press-1", after=0)
    assert (caught_up.cursor, caught_up.more) == (head, False)  # one page: the log compacted
    field = ("user", key, "display_name")
    assert [c for c in caught_up.changes if (c.entity, c.key, c.field) == field] == [names[-1]]
    assert len(caught_up.changes) <= head - 1000  # created "", then 1,000 names: one sent
    # Changed again after the station's cursor: the new value arrives, and only it.
    again = FieldChange("user", key, "display_name", "Olga again", hlc.now())
    async with database.session() as session:
        sync_log.record(session, [again], origin="server")
    await _sequenced(database)
    async with database.session() as session:
        later = await sync_log.page(session, device_id="press-1", after=caught_up.cursor)
    assert later.changes == [again] and later.after == head and not later.more
    # A late edit logged after the cursor with an older stamp than the winner still goes:
    # a page leaves out only what a change in its own range outstamps (the station's LWW
    # keeps the winner it holds).
    late = FieldChange("user", key, "display_name", "Olga late", names[0].stamp)
    async with database.session() as session:
        sync_log.record(session, [late], origin="press-2")
    await _sequenced(database)
    async with database.session() as session:
        last = await sync_log.page(session, device_id="press-1", after=later.cursor)
    assert last.changes == [late]
    assert _lww(last.changes, _lww(caught_up.changes + later.changes))[field][1] == "Olga again"


async def test_pages_from_any_cursor_bring_every_field_to_its_winner(database: Database) -> None:
    head = await _random_log(database, 240, seed=14)
    rng = random.Random(41)
    for device_id in DEVICES:
        visible = await _visible(database, device_id, head)
        winners = _lww(visible)
        from_zero = await _pull(database, device_id, after=0, limit=1000, held={})
        assert from_zero.pages == 1 and from_zero.changes == len(winners)  # each field once
        for after in sorted({head, *rng.sample(range(head), 6)}):
            held = _lww(c for c in await _visible(database, device_id, after))
            for limit in (1, 4, 500):
                pulled = await _pull(database, device_id, after=after, limit=limit, held=held)
                assert pulled.state == winners, (device_id, after, limit)


class _Pulled:
    def __init__(self, state: State, pages: int, changes: int) -> None:
        self.state, self.pages, self.changes = state, pages, changes


async def _pull(
    database: Database, device_id: str, *, after: int, limit: int, held: State
) -> _Pulled:
    """Pull page after page from ``after`` as a station does; what it holds at the end."""
    state, pages, changes, cursor = held, 0, 0, after
    async with database.session() as session:
        while True:
            page = await sync_log.page(session, device_id=device_id, after=cursor, limit=limit)
            assert page.after == cursor and len(page.changes) <= limit
            assert page.cursor > cursor or not page.more  # every page moves the cursor on
            state, pages, changes = (
                _lww(page.changes, state),
                pages + 1,
                changes + len(page.changes),
            )
            cursor = page.cursor
            if not page.more:
                return _Pulled(state, pages, changes)


@contextmanager
def _statements(database: Database) -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements run on ``database`` meanwhile, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def note(*args: Any) -> None:
        seen.append((args[2], args[3]))

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


async def test_a_push_round_gives_each_device_the_page_it_would_pull(database: Database) -> None:
    head = await _random_log(database, 160, seed=7)
    rng = random.Random(70)
    cursors = [0, head // 3, head - 5, head, head + 2]  # head + 2: a station ahead of a reset
    for limit in (1, 3, 500):
        for _ in range(6):
            after_by_device = {d: rng.choice(cursors) for d in DEVICES}
            async with database.session() as session:
                pulled = {
                    d: await sync_log.page(session, device_id=d, after=a, limit=limit)
                    for d, a in after_by_device.items()
                }
                pushed = await sync_log.pages_for(session, after_by_device, limit=limit)
            assert pushed == pulled, (limit, after_by_device)


async def test_a_push_round_to_many_devices_at_one_cursor_is_a_few_queries(
    database: Database,
) -> None:
    await _random_log(database, 40, seed=3)
    many = {f"press-{n}": 0 for n in range(1, 201)}
    async with database.session() as session:
        with _statements(database) as statements:
            pages = await sync_log.pages_for(session, many)
    assert len(statements) == 3  # the head, the shared changes, every device's own ones
    assert len(pages) == 200
    assert pages["press-1"].changes != pages["press-3"].changes  # press-1's own are its own


async def test_a_catch_up_page_probes_the_field_index_once_a_change(database: Database) -> None:
    """Never a join looping over the cursor range for each change: quadratic in a field's
    saves (PostgreSQL planned the outstamped check so on a fresh table). A thousand
    changes: on a table of a few pages any index is as good as another."""
    await _random_log(database, 1000, seed=5)
    async with database.session() as session:
        with _statements(database) as statements:
            await sync_log.page(session, device_id="press-1", after=0)
        statement, parameters = statements[-1]
        explain = "EXPLAIN QUERY PLAN " if database.dialect == "sqlite" else "EXPLAIN "
        connection = await session.connection()
        rows = await connection.exec_driver_sql(explain + statement, parameters)
        plan = "\n".join(str(row[-1]) for row in rows)
    assert "ix_sync_changes_field_stamp" in plan, plan
    assert "Anti Join" not in plan, plan
