"""The station's SQLite outbox: every sample is committed here before anything is sent.

Rows leave only when the server's ack watermark covers them. The stream id, the seq
counter and the applied configuration live in the same file, so a restarted station goes
on where it stopped, with the settings it had, and never reuses a seq. When the cap is
reached, the declared policy applies: drop the oldest rows (and remember exactly which, to
report them) or refuse new samples — never silently.

Values are stored as their wire JSON (decimals as strings, scale kept): a replay splices
the stored text into its messages (``rows``) without decoding a value or encoding it again.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from core.protocol.telemetry import Sample, Value
from desktop.agent.sqlite_tx import immediate

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL,
                                   vals TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS drops (first_seq INTEGER PRIMARY KEY, last_seq INTEGER NOT NULL,
                                  count INTEGER NOT NULL, reason TEXT NOT NULL);
"""
DEFAULT_MAX_ROWS = 5_000_000  # a week of one sample a second, five times over (~1 GB)


class CapPolicy(StrEnum):
    """What happens when the outbox is full."""

    DROP_OLDEST = "drop_oldest"  # keep sampling; report the dropped seq range to the server
    REFUSE = "refuse"  # keep what is stored; new samples are refused (and counted)


class OutboxFullError(RuntimeError):
    """Raised by ``append`` under the refuse policy when the cap is reached."""


@dataclass(frozen=True)
class DroppedRange:
    """Samples the cap policy removed before the server had them: seqs first..last."""

    first_seq: int
    last_seq: int
    count: int
    reason: str


class Row(NamedTuple):
    """A stored sample as the outbox holds it: its values as their wire JSON text."""

    seq: int
    ts: int
    values_json: str


def _encode(values: dict[str, Value]) -> str:
    # Decimals as strings keep their scale, as on the wire (what a replay message carries).
    return json.dumps(
        {k: str(v) if isinstance(v, Decimal) else v for k, v in values.items()},
        separators=(",", ":"),
    )


def _decode(text: str) -> dict[str, Value]:
    raw: dict[str, Any] = json.loads(text)
    return {k: Decimal(v) if isinstance(v, str) else v for k, v in raw.items()}


class Outbox:
    """A SQLite file (WAL) holding unacknowledged samples; blocking calls, run them in a thread.

    Writes (and ``dropped``) share one connection: one call at a time. ``pending`` reads
    on a second connection and may run beside them. ``summary`` (below) opens a read-only
    connection of its own, in any process: it never waits for nor blocks the writer.
    """

    def __init__(
        self,
        path: Path,
        *,
        max_rows: int = DEFAULT_MAX_ROWS,
        policy: CapPolicy = CapPolicy.DROP_OLDEST,
    ) -> None:
        if max_rows < 1:
            msg = f"the outbox cap must be positive: {max_rows}"
            raise ValueError(msg)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.max_rows = max_rows
        self.policy = policy
        # One connection, used from one worker thread at a time (the agent serialises calls).
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process crash
        self._db.executescript(SCHEMA)
        self._reader = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._reader.execute("PRAGMA query_only=1")
        with self._transaction():
            self.stream = self._meta("stream") or self._set_meta("stream", uuid.uuid4().hex)
            self._next_seq = int(self._meta("next_seq") or "1")
            self.acked_seq = int(self._meta("acked_seq") or "0")
        self._depth = self._count()
        self.dropped_total = 0  # samples the cap dropped since this process opened the outbox

    # -- meta ----------------------------------------------------------------------------

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> str:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )
        return value

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on error (the connection autocommits)."""
        with immediate(self._db):
            yield

    def _count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    # -- writing ---------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Samples waiting for the server's ack."""
        return self._depth

    @property
    def next_seq(self) -> int:
        """The seq the next sample gets."""
        return self._next_seq

    def append(self, samples: Sequence[tuple[int, dict[str, Value]]]) -> list[Sample]:
        """Commit samples (ts, values) with the next seqs; returns them as numbered Samples."""
        if not samples:
            return []
        room = self.max_rows - self._depth
        if len(samples) > room and self.policy is CapPolicy.REFUSE:
            msg = f"outbox full ({self._depth} of {self.max_rows} samples); sample refused"
            raise OutboxFullError(msg)
        numbered = [
            Sample(self._next_seq + n, ts, values) for n, (ts, values) in enumerate(samples)
        ]
        next_seq, depth = self._next_seq + len(numbered), self._depth + len(numbered)
        dropped = 0
        with self._transaction():
            self._db.executemany(
                "INSERT INTO outbox (seq, ts, vals) VALUES (?, ?, ?)",
                [(s.seq, s.ts, _encode(dict(s.values))) for s in numbered],
            )
            self._set_meta("next_seq", str(next_seq))
            if depth > self.max_rows:
                dropped = self._drop_oldest(depth - self.max_rows)
        # Only once committed: a full disk fails the COMMIT, and seqs counted before it would
        # be skipped by the next sample, a gap no row or drop report ever accounts for.
        self._next_seq, self._depth = next_seq, depth - dropped
        self.dropped_total += dropped
        return numbered

    def _drop_oldest(self, count: int) -> int:
        """Delete the ``count`` oldest rows and record their range; returns how many went."""
        rows = self._db.execute(
            "SELECT min(seq), max(seq), count(*) FROM "
            "(SELECT seq FROM outbox ORDER BY seq LIMIT ?)",
            (count,),
        ).fetchone()
        first, last, dropped = int(rows[0]), int(rows[1]), int(rows[2])
        self._db.execute("DELETE FROM outbox WHERE seq <= ?", (last,))
        # Extend the last range when it ends just before this one: one report, not thousands.
        extended = self._db.execute(
            "UPDATE drops SET last_seq = ?, count = count + ? WHERE last_seq = ?",
            (last, dropped, first - 1),
        ).rowcount
        if not extended:
            self._db.execute(
                "INSERT INTO drops (first_seq, last_seq, count, reason) VALUES (?, ?, ?, ?)",
                (first, last, dropped, "outbox_cap"),
            )
        return dropped

    # -- reading and acknowledging -----------------------------------------------------------

    def rows(self, after_seq: int, limit: int) -> list[Row]:
        """Up to ``limit`` stored rows with seq > ``after_seq``, in seq order, undecoded.

        On a connection of its own (WAL lets it read while the other writes): the replay
        may call this from its thread while a sample is being committed.
        """
        rows = self._reader.execute(
            "SELECT seq, ts, vals FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ).fetchall()
        return [Row(*row) for row in rows]

    def pending(self, after_seq: int, limit: int) -> list[Sample]:
        """Up to ``limit`` stored samples with seq > ``after_seq``, in seq order, decoded."""
        return [Sample(r.seq, r.ts, _decode(r.values_json)) for r in self.rows(after_seq, limit)]

    def acknowledge(self, acked_seq: int) -> int:
        """Delete every sample up to the server's watermark; returns how many went."""
        if acked_seq <= self.acked_seq:
            return 0
        with self._transaction():
            gone = self._db.execute("DELETE FROM outbox WHERE seq <= ?", (acked_seq,)).rowcount
            self._db.execute("DELETE FROM drops WHERE last_seq <= ?", (acked_seq,))
            self._set_meta("acked_seq", str(acked_seq))
        self.acked_seq = acked_seq  # once committed: a failed delete is asked again by the next ack
        self._depth -= gone
        return int(gone)

    def dropped(self) -> list[DroppedRange]:
        """Dropped ranges the server has not acknowledged yet (to report, again if needed)."""
        rows = self._db.execute(
            "SELECT first_seq, last_seq, count, reason FROM drops ORDER BY first_seq"
        ).fetchall()
        return [DroppedRange(*row) for row in rows]

    def applied_config(self) -> tuple[int, dict[str, Any]]:
        """The configuration version the station last applied, and its settings ({} if none)."""
        version = int(self._meta("config_version") or "0")
        return version, json.loads(self._meta("config") or "{}")

    def save_config(self, version: int, settings: dict[str, Any]) -> None:
        """Remember an applied configuration, so the station starts with it even offline."""
        with self._transaction():
            self._set_meta("config_version", str(version))
            self._set_meta("config", json.dumps(settings, separators=(",", ":")))

    def close(self) -> None:
        """Close the file."""
        self._reader.close()
        self._db.close()


@dataclass(frozen=True)
class OutboxSummary:
    """What an outbox file holds, as a reader beside its station sees it."""

    stream: str
    last_seq: int  # the seq of the last sample committed; 0 while none has been
    acked_seq: int
    depth: int  # samples waiting for the server's ack
    config_version: int  # the configuration applied; 0 while none has been


def summary(path: Path) -> OutboxSummary:
    """Read an outbox file read-only (``mode=ro``): no lock, no write, safe while it runs.

    One consistent snapshot (a read transaction), on a connection opened and closed here.
    """
    if not path.is_file():
        msg = f"no outbox at {path}"
        raise FileNotFoundError(msg)
    uri = f"{path.resolve().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, isolation_level=None)) as db:
        db.execute("BEGIN")
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        depth = int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
        db.execute("COMMIT")
    return OutboxSummary(
        stream=meta.get("stream", ""),
        last_seq=int(meta.get("next_seq", "1")) - 1,
        acked_seq=int(meta.get("acked_seq", "0")),
        depth=depth,
        config_version=int(meta.get("config_version", "0")),
    )
