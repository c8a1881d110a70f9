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
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK when the block raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
