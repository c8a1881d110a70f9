"""The outbox: numbered, durable, deleted only by acks, capped by a declared policy."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from desktop.agent.outbox import CapPolicy, DroppedRange, Outbox, OutboxFullError

VALUES = {"temp": Decimal("21.50"), "parts": 3, "door": True}


def test_seqs_continue_across_restarts_and_the_stream_is_kept(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    first = outbox.append([(1000, VALUES), (2000, VALUES)])
    stream = outbox.stream
    outbox.close()
    again = Outbox(tmp_path / "o.db")
    assert again.stream == stream and len(stream) == 32
    assert [s.seq for s in first] == [1, 2]
    assert [s.seq for s in again.append([(3000, VALUES)])] == [3]
    assert again.depth == 3
    stored = again.pending(0, 10)
    assert [(s.seq, s.ts) for s in stored] == [(1, 1000), (2, 2000), (3, 3000)]
    assert stored[0].values == VALUES
    assert str(stored[0].values["temp"]) == "21.50"  # scale kept


def test_only_the_ack_watermark_deletes(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db")
    outbox.append([(n, VALUES) for n in range(10)])
    assert outbox.acknowledge(4) == 4 and outbox.depth == 6
    assert outbox.acknowledge(3) == 0  # an old ack changes nothing
    assert [s.seq for s in outbox.pending(0, 100)] == [5, 6, 7, 8, 9, 10]
    assert [s.seq for s in outbox.pending(7, 2)] == [8, 9]
    outbox.close()
    assert Outbox(tmp_path / "o.db").acked_seq == 4


def test_drop_oldest_reports_exactly_what_went(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", max_rows=5, policy=CapPolicy.DROP_OLDEST)
    outbox.append([(n, VALUES) for n in range(4)])
    outbox.append([(n, VALUES) for n in range(4)])  # seqs 5..8: 1..3 must go
    assert outbox.depth == 5
    assert [s.seq for s in outbox.pending(0, 100)] == [4, 5, 6, 7, 8]
    assert outbox.dropped() == [DroppedRange(1, 3, 3, "outbox_cap")]
    outbox.acknowledge(6)  # the server has accounted for the range
    assert outbox.dropped() == []


def test_refuse_keeps_what_is_stored(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "o.db", max_rows=3, policy=CapPolicy.REFUSE)
    outbox.append([(n, VALUES) for n in range(3)])
    with pytest.raises(OutboxFullError, match="outbox full"):
        outbox.append([(9, VALUES)])
    assert outbox.depth == 3 and outbox.next_seq == 4  # no seq was used up
    assert [s.seq for s in outbox.pending(0, 10)] == [1, 2, 3]


def test_the_replay_reads_beside_a_write_in_progress(tmp_path: Path) -> None:
    """pending() has a connection of its own: it neither waits for nor sees an open write."""
    outbox = Outbox(tmp_path / "o.db")
    outbox.append([(1000, VALUES)])
    writer = outbox._db  # a sample being committed, caught halfway
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO outbox (seq, ts, vals) VALUES (2, 2000, '{\"parts\":4}')")
    with ThreadPoolExecutor(1) as pool:
        read = pool.submit(outbox.pending, 0, 10).result(timeout=5)
    assert [s.seq for s in read] == [1]
    writer.execute("COMMIT")
    assert [s.seq for s in outbox.pending(0, 10)] == [1, 2]
    outbox.close()


class _FullDisk:
    """The outbox's writing connection on a full disk: every COMMIT fails with SQLITE_FULL.

    As measured on a tmpfs with no space left (bench.chaos.station.SmallDisk): the rows go
    into the page cache, the COMMIT cannot append them to the WAL, and SQLite rolls the
    transaction back; its documentation also allows it to stay open (``rolls_back=False``).
    """

    def __init__(self, db: sqlite3.Connection, *, rolls_back: bool) -> None:
        self._db, self._rolls_back = db, rolls_back

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT":
            if self._rolls_back:
                self._db.execute("ROLLBACK")
            msg = "database or disk is full"
            raise sqlite3.OperationalError(msg)
        return self._db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


@pytest.mark.parametrize("rolls_back", [True, False], ids=["rolled-back", "left-open"])
def test_a_full_disk_uses_up_no_seq_and_the_outbox_goes_on_when_space_returns(
    tmp_path: Path, rolls_back: bool
) -> None:
    """Samples a full disk refuses get no seq: the next stored one follows the last stored
    one, so no seq is ever missing without a row or a drop report (the server's ack
    watermark would wait for it for ever). A refused ack deletes nothing and is asked again."""
    outbox = Outbox(tmp_path / "o.db")
    outbox.append([(n, VALUES) for n in range(3)])
    real = outbox._db
    outbox._db = _FullDisk(real, rolls_back=rolls_back)  # type: ignore[assignment]
    for n in range(5):
        with pytest.raises(sqlite3.OperationalError, match="full"):
            outbox.append([(n, VALUES)])
    with pytest.raises(sqlite3.OperationalError, match="full"):
        outbox.acknowledge(2)
    assert (outbox.next_seq, outbox.depth, outbox.acked_seq) == (4, 3, 0)
    outbox._db = real  # space again
    assert [s.seq for s in outbox.append([(9, VALUES)])] == [4]
    assert outbox.acknowledge(2) == 2
    assert [s.seq for s in outbox.pending(0, 10)] == [3, 4]
    assert (outbox.depth, outbox.acked_seq) == (2, 2)
    outbox.close()
    assert [s.seq for s in Outbox(tmp_path / "o.db").pending(0, 10)] == [3, 4]


def test_a_full_disk_while_the_cap_drops_reports_nothing_it_did_not_drop(
    tmp_path: Path,
) -> None:
    """A drop of the oldest rows that a full disk undoes is neither counted nor reported."""
    outbox = Outbox(tmp_path / "o.db", max_rows=2, policy=CapPolicy.DROP_OLDEST)
    outbox.append([(n, VALUES) for n in range(2)])
    real = outbox._db
    outbox._db = _FullDisk(real, rolls_back=True)  # type: ignore[assignment]
    with pytest.raises(sqlite3.OperationalError, match="full"):
        outbox.append([(9, VALUES)])
    outbox._db = real
    assert (outbox.dropped_total, outbox.depth, outbox.dropped()) == (0, 2, [])
    assert [s.seq for s in outbox.append([(9, VALUES)])] == [3]
    assert outbox.dropped() == [DroppedRange(1, 1, 1, "outbox_cap")]
    assert (outbox.dropped_total, outbox.depth) == (1, 2)
