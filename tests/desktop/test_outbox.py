"""The outbox: numbered, durable, deleted only by acks, capped by a declared policy."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

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
