"""The append-only audit log: a chain keyed with a secret the database does not hold.

Each entry's hash is an HMAC-SHA256, under the audit key, of its canonical content and the
hash before it, so someone with only database access can neither edit an entry and
recompute the ones after it, nor append entries of their own. Entries from before the key
(revision 0004) keep their plain SHA-256 hashes (``scheme = 'sha256'``) and stay verifiable;
a signed checkpoint (core.services.audit_checkpoints) pins how many there are and where the
chain's head was, so a shortened or emptied table shows too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from core.db.engine import AUDIT_KEY_INFO
from core.db.models import AuditEntry
from core.db.types import utcnow

GENESIS = "0" * 64
LEGACY = "sha256"  # unkeyed: rows from before revision 0004, or from a writer without the key
KEYED = "hmac-sha256"
# Any constant works: it only has to be the same for every writer of the audit log.
_PG_AUDIT_LOCK = 0x5050_4155


def _digest(prev_hash: str, entry: AuditEntry, key: bytes | None) -> str:
    body = {
        "prev": prev_hash,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "before": entry.before,
        "after": entry.after,
    }
    if key is None:  # the legacy body, unchanged, so old rows still verify
        return hashlib.sha256(_canonical(body)).hexdigest()
    return hmac.new(key, _canonical({**body, "scheme": KEYED}), hashlib.sha256).hexdigest()


def _canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()


def _key(session: AsyncSession) -> bytes | None:
    key: bytes | None = session.info.get(AUDIT_KEY_INFO)
    return key


async def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    target_type: str = "",
    target_id: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry, chained to the previous one, in the caller's transaction.

    Keyed when the session's database holds the audit key; a writer without it leaves an
    unkeyed entry, which a verifier with the key reports once keyed entries or a
    checkpoint precede it.
    """
    await lock(session)
    last = await session.scalar(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1))
    prev_hash = last or GENESIS
    key = _key(session)
    entry = AuditEntry(
        at=utcnow(),
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        before=_jsonable(before),
        after=_jsonable(after),
        prev_hash=prev_hash,
        scheme=KEYED if key is not None else LEGACY,
    )
    entry.hash = _digest(prev_hash, entry, key)
    session.add(entry)
    await session.flush()
    return entry


async def lock(session: AsyncSession) -> None:
    """Hold the audit log's one writer lock until this transaction ends.

    ``record`` takes it itself; a writer that must look at the log before it decides to
    write (``core.services.refusals``) takes it first, so its look stays true. Re-entrant.
    """
    # Serialise writers so two transactions never chain onto the same predecessor.
    dialect = session.bind.dialect.name if session.bind is not None else ""
    if dialect == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    elif dialect == "sqlite":
        # A write that touches no row still takes SQLite's one write lock (and begins the
        # transaction, which the driver leaves unbegun for reads): from here no other
        # writer commits, so the head read below is the head this entry follows.
        await session.execute(text("DELETE FROM audit_log WHERE 0"))


async def has_since(
    session: AsyncSession, *, action: str, actor: str, target_id: str, since: datetime
) -> bool:
    """Whether an entry of ``action`` by ``actor`` on ``target_id`` was written after ``since``.

    For a writer that rate-limits its entries: under ``lock``, the answer stays true until
    its transaction ends.
    """
    found = await session.scalar(
        select(AuditEntry.id)
        .where(
            AuditEntry.action == action,
            AuditEntry.actor == actor,
            AuditEntry.target_id == target_id,
            AuditEntry.at > since,
        )
        .limit(1)
    )
    return found is not None


async def newest_of(
    session: AsyncSession, *, actions: Sequence[str], actor: str, target_id: str
) -> AuditEntry | None:
    """The newest entry of one of ``actions`` by ``actor`` on ``target_id``, or None.

    For a writer that writes an entry only if no other writer (another replica) has: under
    ``lock``, it stays the newest until its transaction ends.
    """
    query = (
        select(AuditEntry)
        .where(
            AuditEntry.action.in_(list(actions)),
            AuditEntry.actor == actor,
            AuditEntry.target_id == target_id,
        )
        .order_by(AuditEntry.id.desc())
        .limit(1)
    )
    return await session.scalar(query)


async def key_fits(session: AsyncSession) -> bool:
    """Whether this session's audit key made the chain's newest keyed entry (True if none).

    A tool started away from the server's data directory makes an audit key of its own:
    its entries would read as forged, so it asks this before it writes any.
    """
    last = await session.scalar(
        select(AuditEntry).where(AuditEntry.scheme == KEYED).order_by(AuditEntry.id.desc()).limit(1)
    )
    if last is None:
        return True
    key = _key(session)
    return key is not None and hmac.compare_digest(_digest(last.prev_hash, last, key), last.hash)


def _jsonable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else json.loads(json.dumps(value, default=str))


@dataclass(frozen=True)
class Checkpoint:
    """What a signed checkpoint saw: the chain's head, its length, its legacy prefix."""

    head_id: int  # 0 when the chain was empty
    head_hash: str
    rows: int
    legacy_until: int  # entries up to this id may be unkeyed (written before the key)
    at: datetime

    def __post_init__(self) -> None:
        if min(self.head_id, self.rows, self.legacy_until) < 0 or len(self.head_hash) != 64:
            msg = f"not a checkpoint: {self}"
            raise ValueError(msg)


class ChainStatus(StrEnum):
    """The verdict on the chain, worst first when several apply."""

    TAMPERED = "tampered"  # an entry does not hash or link as it must
    KEY_MISSING = "key_missing"  # keyed entries, but this process has no audit key
    CHECKPOINT_INVALID = "checkpoint_invalid"  # the checkpoint file is unreadable or forged
    EMPTIED = "emptied"  # no entries, though the last checkpoint saw some
    SHORTENED = "shortened"  # the entry the last checkpoint ended at is gone
    CHECKPOINT_MISSING = "checkpoint_missing"  # intact, but nothing to compare its length to
    INTACT = "intact"


@dataclass(frozen=True)
class ChainReport:
    """Result of walking the chain: its length and head, and what (if anything) is wrong."""

    rows: int
    first_bad_id: int | None
    status: ChainStatus = ChainStatus.INTACT
    detail: str = ""
    head_id: int = 0
    head_hash: str = GENESIS
    last_legacy_id: int = 0  # the newest unkeyed entry (0: none)

    @property
    def intact(self) -> bool:
        """True when every entry hashes and links as it must and none known is missing."""
        return self.status in (ChainStatus.INTACT, ChainStatus.CHECKPOINT_MISSING)


async def head(session: AsyncSession) -> tuple[int, int]:
    """The newest entry's id (0 if none) and the number of entries: cheap, no walk."""
    newest, rows = (await session.execute(select(func.max(AuditEntry.id), func.count()))).one()
    return int(newest or 0), int(rows)


async def verify_chain(session: AsyncSession, *, anchor: Checkpoint | None = None) -> ChainReport:
    """Recompute every hash in order, and hold the chain against ``anchor`` if given.

    Editing, inserting or removing an entry breaks the chain there unless the forger holds
    the audit key; removing the newest entries (or all of them) shows against the anchor.
    """
    key = _key(session)
    prev_hash, rows, keyed_seen, last_legacy, anchor_seen = GENESIS, 0, False, 0, False
    head_id = 0
    for entry in await session.scalars(select(AuditEntry).order_by(AuditEntry.id)):
        rows, head_id = rows + 1, entry.id
        fault = _fault(entry, prev_hash, key, keyed_seen=keyed_seen, anchor=anchor)
        if fault is not None:
            status, why = fault
            return ChainReport(rows, entry.id, status, f"entry #{entry.id} {why}")
        keyed_seen = keyed_seen or entry.scheme == KEYED
        last_legacy = entry.id if entry.scheme == LEGACY else last_legacy
        anchor_seen = anchor_seen or (anchor is not None and entry.id == anchor.head_id)
        prev_hash = entry.hash
    status, detail = ChainStatus.INTACT, f"intact over {rows} entries"
    if anchor is not None and anchor.rows and not anchor_seen:
        saw = f"the last checkpoint saw entry #{anchor.head_id} (hash {anchor.head_hash[:16]}…)"
        if rows == 0:
            status = ChainStatus.EMPTIED
            detail = f"chain emptied: {saw} and {anchor.rows} entries, the table has none"
        else:
            status = ChainStatus.SHORTENED
            detail = f"chain shortened: {saw}, the table ends at #{head_id} ({rows} entries)"
    return ChainReport(rows, None, status, detail, head_id, prev_hash, last_legacy)


def _fault(
    entry: AuditEntry,
    prev_hash: str,
    key: bytes | None,
    *,
    keyed_seen: bool,
    anchor: Checkpoint | None,
) -> tuple[ChainStatus, str] | None:
    """What is wrong with ``entry`` given the hash before it, or None."""
    tampered = ChainStatus.TAMPERED
    if entry.prev_hash != prev_hash:
        return tampered, "does not link to the entry before it (one was removed or inserted)"
    if entry.scheme == LEGACY:
        if keyed_seen or (anchor is not None and entry.id > anchor.legacy_until):
            return tampered, "is unkeyed where only keyed entries may stand"
        expected = _digest(prev_hash, entry, None)
    elif entry.scheme == KEYED:
        if key is None:
            return ChainStatus.KEY_MISSING, "is keyed, and this process has no audit key"
        expected = _digest(prev_hash, entry, key)
    else:
        return tampered, f"names an unknown scheme {entry.scheme!r}"
    if not hmac.compare_digest(expected, entry.hash):
        return tampered, "does not match its hash (its content was changed)"
    if anchor is not None and entry.id == anchor.head_id and entry.hash != anchor.head_hash:
        return tampered, "differs from the one the last checkpoint saw"
    return None


async def recent(session: AsyncSession, *, limit: int = 200, offset: int = 0) -> list[AuditEntry]:
    """The newest entries first."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    return list(await session.scalars(query))


# Reading the log narrowed (core.services.audit_search decides the conditions and the order
# from a person's query; the statements on the table stay here).


async def page(
    session: AsyncSession,
    *,
    where: Sequence[ColumnElement[bool]],
    order: Sequence[ColumnElement[Any]],
    limit: int,
    offset: int,
) -> tuple[list[AuditEntry], int]:
    """The entries meeting every condition in ``where``, ``limit`` of them from ``offset``
    in ``order``, and how many meet them in all."""
    query = select(AuditEntry).where(*where).order_by(*order).limit(limit).offset(offset)
    rows = list(await session.scalars(query))
    total = await session.scalar(select(func.count()).select_from(AuditEntry).where(*where))
    return rows, int(total or 0)


async def newest_below(
    session: AsyncSession, *, where: Sequence[ColumnElement[bool]], below: int | None, limit: int
) -> list[AuditEntry]:
    """Up to ``limit`` entries meeting ``where`` and older than entry ``below`` (if given),
    newest first: keyed on the id, so entries added meanwhile shift nothing."""
    older = [AuditEntry.id < below] if below is not None else []
    query = select(AuditEntry).where(*where, *older).order_by(AuditEntry.id.desc()).limit(limit)
    return list(await session.scalars(query))


async def actions(session: AsyncSession) -> list[str]:
    """Every action the log holds, sorted (from the action index, not the rows)."""
    return list(
        await session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))
    )
