"""The station's ledger of command ids: what it has seen, how each ended, whether it said so.

One table in the outbox file, on a connection of its own (WAL lets it write beside the
outbox's; SQLite's busy wait takes turns). A station never runs one id twice: an id is
claimed *before* it runs, so a crash between ``delivered`` and the result leaves it
``running``, and the next open turns it into ``failed`` ("interrupted by a station
restart") instead of running it again. A status query about an id never seen claims it
``rejected`` (never received), so the command is refused should it arrive after all.
Each final answer is kept until the server has been sent it (``reported``) and until the
command's signed ``expires_at`` plus the signing leeway has passed: after that the id is
refused as expired anyway, so it is forgotten.
Blocking calls, one at a time (a lock): run them in a thread.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from core.protocol.commands import ACCEPT_LEEWAY_MS
from desktop.agent.sqlite_tx import immediate

SCHEMA = """
CREATE TABLE IF NOT EXISTS command_ledger (
    cmd_id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '', result TEXT NOT NULL DEFAULT '{}',
    expires_at INTEGER NOT NULL, reported INTEGER NOT NULL DEFAULT 0);
"""
INTERRUPTED = "interrupted by a station restart"
# A command may be accepted up to the signing leeway past its expires_at (clock skew): its
# id must be remembered at least that long, or a late duplicate would run again.
KEEP_PAST_EXPIRY_MS = ACCEPT_LEEWAY_MS
BUSY_TIMEOUT_S = 10.0  # the outbox's writer holds the file for milliseconds at a time
LedgerState = Literal["running", "succeeded", "failed", "rejected"]


@dataclass(frozen=True)
class Entry:
    """One command id as the station saw it, and the last answer it gave."""

    cmd_id: str
    kind: str
    state: LedgerState
    detail: str = ""
    result: dict[str, Any] = field(default_factory=dict)
    expires_at: int = 0
    reported: bool = False  # the final answer reached the broker (running: never)


class CommandLedger:
    """Command ids claimed, answered and reported; kept in the outbox file across restarts."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_S
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process crash
        self._db.executescript(SCHEMA)
        # Whatever was running when the last process ended must never run again.
        self._db.execute(
            "UPDATE command_ledger SET state = 'failed', detail = ?, reported = 0 "
            "WHERE state = 'running'",
            (INTERRUPTED,),
        )

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One call at a time, BEGIN IMMEDIATE … COMMIT (ROLLBACK on error)."""
        with self._lock, immediate(self._db) as db:
            yield db

    def claim(
        self,
        cmd_id: str,
        kind: str,
        expires_at: int,
        *,
        now_ms: int,
        state: LedgerState = "running",
        detail: str = "",
    ) -> Entry | None:
        """Record a new id in ``state`` and return None; or return the entry already kept.

        Forgets expired ids first, so the ledger stays as small as the commands in flight.
        """
        with self._transaction() as db:
            _prune(db, now_ms)
            row = db.execute(
                "SELECT cmd_id, kind, state, detail, result, expires_at, reported "
                "FROM command_ledger WHERE cmd_id = ?",
                (cmd_id,),
            ).fetchone()
            if row is not None:
                return _entry(row)
            db.execute(
                "INSERT INTO command_ledger (cmd_id, kind, state, detail, expires_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (cmd_id, kind, state, detail, expires_at),
            )
        return None

    def finish(self, cmd_id: str, state: LedgerState, detail: str, result: dict[str, Any]) -> None:
        """Keep a command's final answer, not yet reported."""
        with self._transaction() as db:
            db.execute(
                "UPDATE command_ledger SET state = ?, detail = ?, result = ?, reported = 0 "
                "WHERE cmd_id = ?",
                (state, detail, json.dumps(result, separators=(",", ":")), cmd_id),
            )

    def mark_reported(self, cmd_id: str) -> None:
        """The final answer of ``cmd_id`` reached the broker."""
        with self._transaction() as db:
            db.execute(
                "UPDATE command_ledger SET reported = 1 WHERE cmd_id = ? AND state != 'running'",
                (cmd_id,),
            )

    def unreported(self) -> list[Entry]:
        """Final answers the server has not been sent yet (the link was down, or a restart)."""
        with self._transaction() as db:
            rows = db.execute(
                "SELECT cmd_id, kind, state, detail, result, expires_at, reported "
                "FROM command_ledger WHERE reported = 0 AND state != 'running' "
                "ORDER BY expires_at"
            ).fetchall()
        return [_entry(row) for row in rows]

    def get(self, cmd_id: str) -> Entry | None:
        """The entry of ``cmd_id``, if the ledger keeps one."""
        with self._transaction() as db:
            row = db.execute(
                "SELECT cmd_id, kind, state, detail, result, expires_at, reported "
                "FROM command_ledger WHERE cmd_id = ?",
                (cmd_id,),
            ).fetchone()
        return None if row is None else _entry(row)

    def prune(self, *, now_ms: int) -> int:
        """Forget ids past their expiry and the leeway; returns how many went."""
        with self._transaction() as db:
            return _prune(db, now_ms)

    def count(self) -> int:
        """How many ids the ledger keeps."""
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM command_ledger").fetchone()[0])

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()


def _prune(db: sqlite3.Connection, now_ms: int) -> int:
    gone = db.execute(
        "DELETE FROM command_ledger WHERE expires_at < ?", (now_ms - KEEP_PAST_EXPIRY_MS,)
    ).rowcount
    return int(gone)


def _entry(row: tuple[Any, ...]) -> Entry:
    cmd_id, kind, state, detail, result, expires_at, reported = row
    return Entry(cmd_id, kind, state, detail, json.loads(result), expires_at, bool(reported))
