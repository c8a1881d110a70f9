"""The append-only, hash-chained audit log."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import AuditEntry
from core.db.types import utcnow

GENESIS = "0" * 64
# Any constant works: it only has to be the same for every writer of the audit log.
_PG_AUDIT_LOCK = 0x5050_4155


def _digest(prev_hash: str, entry: AuditEntry) -> str:
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
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


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
    """Append one entry, chained to the previous one, in the caller's transaction."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        # Serialise writers so two transactions never chain onto the same predecessor.
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    last = await session.scalar(select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1))
    prev_hash = last or GENESIS
    entry = AuditEntry(
        at=utcnow(),
        actor=actor,
        action=action,
        target_type=target_type,
        target_id=target_id,
        before=_jsonable(before),
        after=_jsonable(after),
        prev_hash=prev_hash,
    )
    entry.hash = _digest(prev_hash, entry)
    session.add(entry)
    await session.flush()
    return entry


def _jsonable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if value is None else json.loads(json.dumps(value, default=str))


@dataclass(frozen=True)
class ChainReport:
    """Result of walking the chain: how many rows, and the first that does not fit."""

    rows: int
    first_bad_id: int | None

    @property
    def intact(self) -> bool:
        """True when every row hashes to what it claims and links to its predecessor."""
        return self.first_bad_id is None


async def verify_chain(session: AsyncSession) -> ChainReport:
    """Recompute every hash in order; tampering with any row breaks the chain there."""
    prev_hash, rows = GENESIS, 0
    for entry in await session.scalars(select(AuditEntry).order_by(AuditEntry.id)):
        rows += 1
        if entry.prev_hash != prev_hash or _digest(prev_hash, entry) != entry.hash:
            return ChainReport(rows, entry.id)
        prev_hash = entry.hash
    return ChainReport(rows, None)


async def recent(session: AsyncSession, *, limit: int = 200, offset: int = 0) -> list[AuditEntry]:
    """The newest entries first."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    return list(await session.scalars(query))
