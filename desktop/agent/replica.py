"""The station's replica of users, roles, permissions and configuration: a SQLite file.

Rules:
- ``fields`` is the canonical copy, one row per field of a synced row, written only by
  ``apply_page`` with the server's changes: last writer wins per field (a change is kept
  if the field has no row yet or its stamp is higher; on a tie, the higher JSON value, so
  any delivery order ends the same). Deletes are tombstones (``deleted`` true).
- ``pending`` holds edits made here that the server has not answered: an overlay. The
  effective value of a field is the higher-stamped of canonical and pending. An answer
  drops the edit: accepted, its value comes back in a page; refused, it is reverted.
- Every edit is signed with its author's edit key (``core.edit_keys``, derived at sign-in
  and held only in memory): the proof is stored with it, the key never. The new edit keys
  an edit carries (for the passwords it sets) wait with it until it is answered. An edit
  written before edits were signed (schema v1) goes up unsigned: the server refuses it
  and the station reverts it, as any refusal (``desktop.agent.edits``).
- The cursor moves only over pages that follow on from it (``page.after <= cursor``); a
  page past a gap is applied (last writer wins makes that safe) but leaves the cursor,
  so the station pulls what it missed.
- Sign-in failures are the station's own and never synced.
- The clock observes every stamp applied, and at open the highest one stored, so a
  restarted station never stamps an edit earlier than what it already holds.

Threading: blocking calls, run them from a worker thread (as the outbox's). Writes share
one connection, one at a time; reads use a second one and may run beside a write. A
``read_only`` replica (``mode=ro``, for the command line beside a running station) takes
no lock and writes nothing.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from core.hlc import Clock
from core.protocol.sync import Answer, ChangePage, Edit
from desktop.agent import edits
from desktop.agent import replica_schema as schema
from desktop.agent.directory import Directory, PersonRecord, RoleRecord, effective_rows
from desktop.agent.edits import Author
from desktop.agent.sqlite_tx import immediate

__all__ = ["Author", "PersonRecord", "Replica", "ReplicaStatus", "RoleRecord", "replica_path"]

# Last writer wins per field; a tie of stamps (one stamp is one value, so only a corrupt
# sender ties) goes to the higher value, so every replica still agrees.
_UPSERT = (
    "INSERT INTO fields (entity, key, field, value, stamp) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (entity, key, field) DO UPDATE SET value = excluded.value, "
    "stamp = excluded.stamp WHERE excluded.stamp > fields.stamp "
    "OR (excluded.stamp = fields.stamp AND excluded.value > fields.value)"
)
_DIRECTORY = ("user", "role", "permission", "role_permission", "user_role", "device_config")


def replica_path(data_dir: Path, device_id: str) -> Path:
    """Where the station ``device_id`` keeps its replica in ``data_dir`` (beside its outbox)."""
    return data_dir / f"{device_id}.replica.sqlite"


@dataclass(frozen=True)
class ReplicaStatus:
    """Where the replica stands, for the window and the command line."""

    cursor: int  # the server's change cursor the replica holds everything up to
    last_sync_at: datetime | None  # when a page last applied in order; None: never
    pending: int  # edits made here, waiting for the server's answer
    users: int  # live users


class Replica:
    """The station's replica file: canonical fields, pending edits, cursor, sign-in failures."""

    def __init__(
        self,
        path: Path,
        *,
        device_id: str,
        read_only: bool = False,
        create: bool = True,
        wall: Callable[[], int] | None = None,
    ) -> None:
        """Open (creating and migrating unless ``read_only`` or not ``create``) the replica.

        FileNotFoundError when it does not exist and may not be created. ``wall`` (epoch
        ms) stands in for the station's wall clock: a skewed one, in tests.
        """
        self.path, self.device_id, self.read_only = path, device_id, read_only
        if (read_only or not create) and not path.is_file():
            msg = f"no replica at {path}"
            raise FileNotFoundError(msg)
        self._clock = Clock(device_id, wall)
        self._write_lock, self._read_lock = threading.Lock(), threading.Lock()
        self._db: sqlite3.Connection | None = None
        if read_only:
            self._reader = schema.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = schema.open_writer(str(path))
            self._reader = schema.connect(str(path))
            self._reader.execute("PRAGMA query_only=1")
        if schema.version(self._reader) == 0:  # created but never migrated: nothing to read
            self.close()
            msg = f"the replica {path} is not set up yet"
            raise FileNotFoundError(msg)
        self._cache: tuple[int, Directory] | None = None
        with self._read() as db:
            for (stamp,) in db.execute(
                "SELECT max(stamp) FROM fields UNION ALL SELECT max(stamp) FROM pending"
            ):
                if stamp:
                    self._clock.observe(stamp)

    def close(self) -> None:
        """Close the file."""
        self._reader.close()
        if self._db is not None:
            self._db.close()

    def __enter__(self) -> Replica:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT on the writer, or ROLLBACK on error."""
        if self._db is None:
            msg = f"the replica {self.path} is open read-only"
            raise RuntimeError(msg)
        with self._write_lock, immediate(self._db) as db:
            yield db

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """One consistent snapshot on the reader (WAL: never waits for nor blocks a write)."""
        with self._read_lock:
            self._reader.execute("BEGIN")
            try:
                yield self._reader
            finally:
                self._reader.execute("COMMIT")

    @staticmethod
    def _meta(db: sqlite3.Connection, key: str) -> str | None:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _set_meta(db: sqlite3.Connection, key: str, value: str) -> None:
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- the server's changes --------------------------------------------------------------

    @property
    def cursor(self) -> int:
        """The server's change cursor this replica holds every change up to."""
        with self._read() as db:
            return int(self._meta(db, "cursor") or "0")

    def apply_page(self, page: ChangePage) -> bool:
        """Apply a page in one transaction; True if it followed on (cursor moved), False on a gap.

        On a gap (``page.after`` past the cursor) the changes still apply; pull from
        ``cursor`` for the ones missed.
        """
        if page.device_id != self.device_id:
            msg = f"a page for {page.device_id!r} offered to the replica of {self.device_id!r}"
            raise ValueError(msg)
        rows = [(c.entity, c.key, c.field, edits.dump(c.value), c.stamp) for c in page.changes]
        with self._write() as db:
            db.executemany(_UPSERT, rows)
            cursor = int(self._meta(db, "cursor") or "0")
            follows = page.after <= cursor
            if follows:
                self._set_meta(db, "cursor", str(max(cursor, page.cursor)))
                self._set_meta(db, "last_sync_at", datetime.now(UTC).isoformat())
        if page.changes:
            self._clock.observe(max(c.stamp for c in page.changes))
        return follows

    # -- edits made here ---------------------------------------------------------------------

    def record_edit(
        self,
        person: Author,
        changes: Sequence[tuple[str, str, str, Any]],
        *,
        keys: Mapping[uuid.UUID, bytes] | None = None,
    ) -> Edit:
        """Store an edit (entity, key, field, value changes) as pending, at one fresh stamp,
        signed with ``person``'s edit key; ``keys``: the new edit keys of the users whose
        password it sets (``core.edit_keys.derive`` of each new password).

        ValueError if the person has no edit key (sign in again), a change names no
        station-writable field, the edit is empty, too large or changes a field twice, or
        a key is not for a password it sets. Permission is the caller's to check.
        """
        edit = edits.make(person, changes, keys or {}, stamp=self._clock.now)
        with self._write() as db:
            db.execute(
                f"INSERT INTO pending ({edits.COLUMNS}, stamp, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (*edits.row(edit), edit.changes[0].stamp, datetime.now(UTC).isoformat()),
            )
        return edit

    def pending(self) -> list[Edit]:
        """The edits waiting for the server's answer, oldest first."""
        with self._read() as db:
            rows = db.execute(f"SELECT {edits.COLUMNS} FROM pending ORDER BY stamp").fetchall()
        return [edits.from_row(row) for row in rows]

    def settle(self, answers: Sequence[Answer]) -> list[tuple[Edit, Answer]]:
        """Drop the answered edits this replica holds; returns them with their answers.

        A refused edit is reverted by being dropped; an accepted one comes back in a page.
        Answers to edits not held (answered before, or another file's) are ignored.
        """
        settled: list[tuple[Edit, Answer]] = []
        with self._write() as db:
            for answer in answers:
                row = db.execute(
                    f"DELETE FROM pending WHERE change_id = ? RETURNING {edits.COLUMNS}",
                    (str(answer.change_id),),
                ).fetchone()
                if row is not None:
                    settled.append((edits.from_row(row), answer))
        return settled

    # -- the effective view --------------------------------------------------------------------

    def _directory(self) -> Directory:
        """The effective view, rebuilt only when the file changed since the last build."""
        with self._read() as db:
            # Changes whenever another connection (this object's writer included) commits.
            version = int(db.execute("PRAGMA data_version").fetchone()[0])
            if self._cache is not None and self._cache[0] == version:
                return self._cache[1]
            placeholders = ", ".join("?" * len(_DIRECTORY))
            canonical = db.execute(
                f"SELECT entity, key, field, value, stamp FROM fields "
                f"WHERE entity IN ({placeholders})",
                _DIRECTORY,
            ).fetchall()
            pending = [row[0] for row in db.execute("SELECT changes FROM pending")]
        overlay = [c for changes in pending for c in orjson.loads(changes)]
        directory = Directory(effective_rows(canonical, overlay))
        self._cache = (version, directory)
        return directory

    def people(self) -> list[PersonRecord]:
        """Live users, effective view, by username."""
        return self._directory().people()

    def find(self, username: str) -> PersonRecord | None:
        """The live user with this username."""
        return self._directory().find(username)

    def person(self, user_id: uuid.UUID) -> PersonRecord | None:
        """The live user with this id."""
        return self._directory().person(user_id)

    def roles(self) -> list[RoleRecord]:
        """Live roles with the names of the permissions they grant, by name."""
        return self._directory().roles()

    def permission_names(self) -> list[str]:
        """Live permissions, by name."""
        return self._directory().permission_names()

    def directory(self) -> Directory:
        """The whole effective view at once (people, roles, links, desired settings)."""
        return self._directory()

    def status(self) -> ReplicaStatus:
        """Cursor, last sync, pending edits and live users."""
        with self._read() as db:
            cursor = int(self._meta(db, "cursor") or "0")
            synced = self._meta(db, "last_sync_at")
            pending = int(db.execute("SELECT count(*) FROM pending").fetchone()[0])
        return ReplicaStatus(
            cursor=cursor,
            last_sync_at=datetime.fromisoformat(synced) if synced else None,
            pending=pending,
            users=len(self.people()),
        )

    # -- sign-in failures (this station's own, never synced) ---------------------------------

    def count_sign_in_attempt(
        self, username: str, *, now: datetime, lock_for: Callable[[int], int | None]
    ) -> int | None:
        """Count one more attempt unless the name is locked at ``now``: its number, or None.

        Counted before the password is checked, and locked at once when ``lock_for`` says
        this attempt locks (a success takes the count and the lock back).
        """
        with self._write() as db:
            row = db.execute(
                "SELECT failures, locked_until FROM sign_in_failures WHERE username = ?",
                (username,),
            ).fetchone()
            failures, locked = (0, None) if row is None else row
            if locked is not None and datetime.fromisoformat(locked) > now:
                return None
            attempt = int(failures) + 1
            seconds = lock_for(attempt)
            until = None if seconds is None else (now + timedelta(seconds=seconds)).isoformat()
            db.execute(
                "INSERT INTO sign_in_failures (username, failures, locked_until) VALUES (?, ?, ?)"
                " ON CONFLICT (username) DO UPDATE SET failures = excluded.failures,"
                " locked_until = excluded.locked_until",
                (username, attempt, until),
            )
        return attempt

    def sign_in_locked_until(self, username: str) -> datetime | None:
        """Until when this name's sign-ins are refused here, if a lock was set."""
        with self._read() as db:
            row = db.execute(
                "SELECT locked_until FROM sign_in_failures WHERE username = ?", (username,)
            ).fetchone()
        return None if row is None or row[0] is None else datetime.fromisoformat(row[0])

    def clear_sign_in_failures(self, username: str) -> None:
        """A successful sign-in: the count starts again and any lock is lifted."""
        with self._write() as db:
            db.execute("DELETE FROM sign_in_failures WHERE username = ?", (username,))
