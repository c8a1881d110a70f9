"""The station's SQLite files write in ``BEGIN IMMEDIATE`` transactions.

Their connections autocommit (``isolation_level=None``), so a transaction is explicit.
IMMEDIATE takes the write lock at the start: a second writer (another thread, the
``station login`` command) waits for it under ``busy_timeout`` instead of failing halfway
when it tries to upgrade a read lock.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator


@contextlib.contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK when the block or the COMMIT raises.

    On a full disk (SQLITE_FULL) or an I/O error SQLite may already have rolled back, or may
    not have: roll back only a transaction still open, so the error raised is the real one
    and the connection is never left inside a transaction every later BEGIN would refuse.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
