"""The sync change log: every accepted field change, in the order stations receive them.

Rules:
- A row is written in the transaction that changes the field, without a cursor.
- ``sequence`` gives committed rows their cursors, in its own short transaction and one
  sequencer at a time (an advisory lock on PostgreSQL; SQLite has one writer anyway). A
  row is visible before it has a cursor only to the stamp queries, so cursors grow in the
  order rows become readable, and "after my cursor" never skips one that committed late.
- A field's current value is the value of its highest stamp. ``value_at`` reads the log
  as of a stamp: what the server's own records said at that moment.
- Pages are compacted: of a field's changes in (after, head] a page holds only the one with
  the highest stamp (a row another change of the same field outstamps there can never win,
  whatever the station holds), so a station catching up from 0 gets each field once, not
  every value it ever had. Pages are still in cursor order and cut after ``limit`` changes;
  after applying every page up to a cursor a station holds each field's winner as of it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    Row,
    Select,
    bindparam,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, aliased

from core.db.models import SyncChange
from core.protocol.sync import FieldChange

SEQUENCER_LOCK = 0x5059_4E43  # "PYNC": the pg_advisory_xact_lock key of the sequencer
PAGE_CHANGES = 500  # field changes a page holds: ~60 KB of JSON, far under the 256 KiB cap


def record(
    session: AsyncSession | Session,
    changes: Iterable[FieldChange],
    *,
    origin: str,
    actor: str = "",
    scope: str | None = None,
    change_id: uuid.UUID | None = None,
) -> None:
    """Log field changes that are part of one edit (added to the session, not flushed).

    Takes a plain ``Session`` too: ``core.sync.capture`` logs from inside a flush.
    """
    change_id = change_id or uuid.uuid4()
    session.add_all(
        SyncChange(
            change_id=change_id,
            entity=change.entity,
            key=change.key,
            field=change.field,
            value=change.value,
            stamp=change.stamp,
            origin=origin,
            actor=actor,
            scope=scope,
        )
        for change in changes
    )


async def sequence(session: AsyncSession) -> int:
    """Give every committed row without a cursor the next cursors; the head cursor after.

    Run in a transaction of its own and commit it at once: the lock is held until then.
    """
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEQUENCER_LOCK})
    head = await head_cursor(session)
    waiting = list(
        await session.scalars(
            select(SyncChange.id).where(SyncChange.cursor.is_(None)).order_by(SyncChange.id)
        )
    )
    for offset, row_id in enumerate(waiting, start=1):
        await session.execute(
            update(SyncChange)
            .where(SyncChange.id == row_id)
            .values(cursor=head + offset)
            .execution_options(synchronize_session=False)
        )
    return head + len(waiting)


async def head_cursor(session: AsyncSession) -> int:
    """The highest cursor given so far (0 before the first)."""
    return int(await session.scalar(select(func.max(SyncChange.cursor))) or 0)


@dataclass(frozen=True)
class Page:
    """Changes after a cursor for one station, and the cursor the station is at after them."""

    after: int
    cursor: int
    head: int
    changes: list[FieldChange]

    @property
    def more(self) -> bool:
        """Whether changes past ``cursor`` wait for another page."""
        return self.cursor < self.head


async def page(
    session: AsyncSession, *, device_id: str, after: int, limit: int = PAGE_CHANGES
) -> Page:
    """The next changes for ``device_id`` after cursor ``after``: everyone's and its own."""
    head = await head_cursor(session)
    values = {"after": after, "head": head, "device": device_id, "limit": limit}
    return _cut(after, head, list(await session.execute(_PAGE, values)), limit)


async def pages_for(
    session: AsyncSession, after_by_device: Mapping[str, int], *, limit: int = PAGE_CHANGES
) -> dict[str, Page]:
    """For each device the page ``page`` would give it after its cursor, in a few queries.

    Devices at the same cursor get the same shared (unscoped) changes: those are read once
    per distinct cursor, and the devices' own (scoped) ones in one more query for all of
    them. A push round, where the stations usually stand at one cursor, costs the head and
    two queries instead of a query a device.
    """
    head = await head_cursor(session)
    at: dict[int, list[str]] = {}
    for device_id, after in after_by_device.items():
        at.setdefault(after, []).append(device_id)
    pages: dict[str, Page] = {}
    for after, group in at.items():
        values = {"after": after, "head": head, "limit": limit}
        shared = list(await session.execute(_SHARED, values))
        # A full shared page ends at its last cursor: no device's page reaches past it.
        upto = shared[-1].cursor if len(shared) == limit else head
        own: dict[str, list[Row[Any]]] = {}
        for row in await session.execute(_SCOPED, {**values, "upto": upto, "devices": group}):
            own.setdefault(row.scope, []).append(row)
        for device_id in group:
            rows = sorted([*shared, *own.get(device_id, [])], key=lambda r: int(r.cursor))
            pages[device_id] = _cut(after, head, rows[:limit], limit)
    return pages


def _winners() -> Select[Any]:
    """Changes in (:after, :head] that no change of the same field there outstamps.

    Only changes of the same scope count, so a device's page never depends on another's.
    Equal stamps both stay (the station applies them in cursor order, as it always did).
    """
    after, head = bindparam("after", type_=BigInteger), bindparam("head", type_=BigInteger)
    later = aliased(SyncChange)
    outstamped = (
        select(later.id)
        .where(
            later.entity == SyncChange.entity,
            later.key == SyncChange.key,
            later.field == SyncChange.field,
            later.stamp > SyncChange.stamp,
            later.cursor > after,
            later.cursor <= head,
            later.scope.is_not_distinct_from(SyncChange.scope),
        )
        # OFFSET keeps PostgreSQL from turning this into an anti join, which it planned as
        # a nested loop over the cursor range: quadratic in a field's saves (90 ms a page
        # at 1,000). As a subplan each row is one probe of ix_sync_changes_field_stamp.
        .offset(0)
        .exists()
    )
    columns = (SyncChange.cursor, SyncChange.entity, SyncChange.key, SyncChange.field)
    return (
        select(*columns, SyncChange.value, SyncChange.stamp)
        .where(SyncChange.cursor > after, SyncChange.cursor <= head, ~outstamped)
        .order_by(SyncChange.cursor)
    )


def _own_first() -> Select[Any]:
    """Each of :devices' own changes in (:after, :upto], its first :limit, by cursor."""
    rank = func.row_number().over(partition_by=SyncChange.scope, order_by=SyncChange.cursor)
    ranked = (
        _winners()
        .add_columns(SyncChange.scope, rank.label("rank"))
        .where(
            SyncChange.scope.in_(bindparam("devices", expanding=True)),
            SyncChange.cursor <= bindparam("upto", type_=BigInteger),
        )
        .order_by(None)
        .subquery()
    )
    limit = bindparam("limit", type_=Integer)
    return select(ranked).where(ranked.c.rank <= limit).order_by(ranked.c.cursor)


# Built once: composing these per call cost more CPU than running them (~2 ms a page).
_LIMIT = bindparam("limit", type_=Integer)
_PAGE = (
    _winners()
    .where(or_(SyncChange.scope.is_(None), SyncChange.scope == bindparam("device")))
    .limit(_LIMIT)
)
_SHARED = _winners().where(SyncChange.scope.is_(None)).limit(_LIMIT)
_SCOPED = _own_first()


def _cut(after: int, head: int, rows: list[Row[Any]], limit: int) -> Page:
    """A page of ``rows``: a full one ends at its last cursor, a short one at the head."""
    cursor = rows[-1].cursor if len(rows) == limit else max(head, after)
    changes = [FieldChange(r.entity, r.key, r.field, r.value, r.stamp) for r in rows]
    return Page(after=after, cursor=cursor, head=head, changes=changes)


async def current(session: AsyncSession, entity: str, key: str, field: str) -> FieldChange | None:
    """The field's winning change (its highest stamp), if the log holds one."""
    return await _latest(session, entity, key, field, None)


async def value_at(
    session: AsyncSession, entity: str, key: str, field: str, stamp: str
) -> FieldChange | None:
    """The field's change in effect at ``stamp`` (the latest at or before it), if any."""
    return await _latest(session, entity, key, field, stamp)


async def _latest(
    session: AsyncSession, entity: str, key: str, field: str, at: str | None
) -> FieldChange | None:
    query = select(SyncChange.value, SyncChange.stamp).where(
        SyncChange.entity == entity, SyncChange.key == key, SyncChange.field == field
    )
    if at is not None:
        query = query.where(SyncChange.stamp <= at)
    row = (await session.execute(query.order_by(SyncChange.stamp.desc()).limit(1))).first()
    return FieldChange(entity, key, field, row.value, row.stamp) if row else None


async def fields_of(session: AsyncSession, entity: str, key: str) -> dict[str, Any]:
    """Every field of one row with its current value, from the log."""
    query = (
        select(SyncChange.field, SyncChange.value)
        .where(SyncChange.entity == entity, SyncChange.key == key)
        .order_by(SyncChange.stamp)
    )
    return {row.field: row.value for row in await session.execute(query)}


@dataclass(frozen=True)
class Author:
    """Where a logged change was made ("server" or a device id) and by whom ("" if nobody)."""

    origin: str
    actor: str


FieldStamp = tuple[str, str, str, str]  # (entity, key, field, stamp): one logged change


async def authors(session: AsyncSession, changes: Iterable[FieldStamp]) -> dict[FieldStamp, Author]:
    """Who made each of these logged changes and where; ones the log lacks are left out."""
    wanted = list(dict.fromkeys(changes))
    if not wanted:
        return {}
    columns = (SyncChange.entity, SyncChange.key, SyncChange.field, SyncChange.stamp)
    query = select(*columns, SyncChange.origin, SyncChange.actor).where(
        tuple_(*columns).in_(wanted)
    )
    return {
        (r.entity, r.key, r.field, r.stamp): Author(r.origin, r.actor)
        for r in await session.execute(query)
    }


@dataclass(frozen=True)
class Entry:
    """A logged change with where it was made (``server`` or a device id) and by whom."""

    change: FieldChange
    origin: str
    actor: str


async def current_entry(session: AsyncSession, entity: str, key: str, field: str) -> Entry | None:
    """The field's winning change with its origin and actor (for the conflict log)."""
    query = (
        select(SyncChange.value, SyncChange.stamp, SyncChange.origin, SyncChange.actor)
        .where(SyncChange.entity == entity, SyncChange.key == key, SyncChange.field == field)
        .order_by(SyncChange.stamp.desc())
        .limit(1)
    )
    row = (await session.execute(query)).first()
    if row is None:
        return None
    return Entry(FieldChange(entity, key, field, row.value, row.stamp), row.origin, row.actor)


async def has_edit(session: AsyncSession, change_id: uuid.UUID) -> bool:
    """Whether the log holds changes of this edit (a station's edit sent again)."""
    query = select(SyncChange.id).where(SyncChange.change_id == change_id).limit(1)
    return await session.scalar(query) is not None


async def keys_of(session: AsyncSession, entity: str, *, prefix: str) -> list[str]:
    """Every key of ``entity`` the log holds that starts with ``prefix`` (a link's owner)."""
    query = (
        select(SyncChange.key)
        .where(SyncChange.entity == entity, SyncChange.key.startswith(prefix, autoescape=True))
        .distinct()
        .order_by(SyncChange.key)
    )
    return list(await session.scalars(query))
