"""The replica file's schema and how its connections are opened.

The schema grows one step per version: ``PRAGMA user_version`` counts the steps a file
has run. Add a step at the end to change it; never edit one a station may already have run.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from desktop.agent.sqlite_tx import immediate

MIGRATIONS: Final[list[tuple[str, ...]]] = [
    (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE fields (entity TEXT NOT NULL, key TEXT NOT NULL, field TEXT NOT NULL,"
        " value TEXT NOT NULL, stamp TEXT NOT NULL, PRIMARY KEY (entity, key, field))"
        " WITHOUT ROWID",
        "CREATE TABLE pending (change_id TEXT PRIMARY KEY, user_id TEXT NOT NULL,"
        " username TEXT NOT NULL, stamp TEXT NOT NULL, changes TEXT NOT NULL,"
        " created_at TEXT NOT NULL)",
        "CREATE INDEX pending_by_stamp ON pending (stamp)",
        "CREATE TABLE sign_in_failures (username TEXT PRIMARY KEY,"
        " failures INTEGER NOT NULL, locked_until TEXT)",
    ),
    (
        # v2: edits are signed with their author's edit key (core.edit_keys). A pending edit
        # written by v1 has no proof (NULL): it goes up unsigned and the server refuses it.
        # ``keys``: the new edit keys (hex, by user id) of the users whose password it sets.
        "ALTER TABLE pending ADD COLUMN proof TEXT",
        "ALTER TABLE pending ADD COLUMN keys TEXT NOT NULL DEFAULT '{}'",
    ),
]
BUSY_TIMEOUT_MS = 5_000  # a write waits this long for another's (the CLI's, the station's)


def connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), usable from any thread."""
    db = sqlite3.connect(target, uri=uri, check_same_thread=False, isolation_level=None)
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return db


def open_writer(target: str) -> sqlite3.Connection:
    """The writer: WAL, and the file migrated to the newest step."""
    db = connect(target)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process crash
    migrate(db)
    return db


def version(db: sqlite3.Connection) -> int:
    """The schema steps the file has run (0: none, an empty or foreign file)."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection) -> None:
    """Run the steps the file lacks, in one transaction (of two openers, one migrates)."""
    with immediate(db):
        have = version(db)
        if have > len(MIGRATIONS):
            msg = f"the replica is schema v{have}, newer than this program's"
            raise RuntimeError(msg)
        for number, step in enumerate(MIGRATIONS[have:], start=have + 1):
            for statement in step:
                db.execute(statement)
            db.execute(f"PRAGMA user_version={number}")
