"""The ledger of command ids: claimed once, kept across a reopen, forgotten after expiry."""

from __future__ import annotations

from pathlib import Path

from core.protocol.commands import NOT_RECEIVED
from desktop.agent.command_ledger import INTERRUPTED, KEEP_PAST_EXPIRY_MS, CommandLedger, Entry
from desktop.agent.outbox import Outbox, summary

NOW = 1_764_170_000_000
ID, OTHER = "5b0f1c5e-0000-4000-8000-000000000001", "5b0f1c5e-0000-4000-8000-000000000002"


def test_an_id_is_claimed_once_and_its_answer_kept(tmp_path: Path) -> None:
    ledger = CommandLedger(tmp_path / "station.outbox.db")
    assert ledger.claim(ID, "Ping", NOW + 30_000, now_ms=NOW) is None
    assert ledger.claim(ID, "Ping", NOW + 30_000, now_ms=NOW) == Entry(
        ID, "Ping", "running", expires_at=NOW + 30_000
    )
    assert ledger.unreported() == []  # nothing to tell while it runs
    ledger.finish(ID, "succeeded", "answered", {"uptime_s": 3})
    done = Entry(ID, "Ping", "succeeded", "answered", {"uptime_s": 3}, NOW + 30_000)
    assert ledger.claim(ID, "Ping", NOW + 30_000, now_ms=NOW) == done
    assert ledger.unreported() == [done]
    ledger.mark_reported(ID)
    assert ledger.unreported() == [] and ledger.get(ID) == Entry(**{**vars(done), "reported": True})
    ledger.close()


def test_the_ledger_survives_a_reopen_and_what_ran_never_runs_again(tmp_path: Path) -> None:
    path = tmp_path / "station.outbox.db"
    ledger = CommandLedger(path)
    ledger.claim(ID, "Ping", NOW + 30_000, now_ms=NOW)
    ledger.finish(ID, "succeeded", "answered", {})
    ledger.mark_reported(ID)
    ledger.claim(OTHER, "FlushOutbox", NOW + 30_000, now_ms=NOW)  # the process ends mid-run
    ledger.close()

    again = CommandLedger(path)
    assert again.claim(ID, "Ping", NOW + 30_000, now_ms=NOW) == Entry(
        ID, "Ping", "succeeded", "answered", {}, NOW + 30_000, reported=True
    )
    interrupted = Entry(OTHER, "FlushOutbox", "failed", INTERRUPTED, {}, NOW + 30_000)
    assert again.claim(OTHER, "FlushOutbox", NOW + 30_000, now_ms=NOW) == interrupted
    assert again.unreported() == [interrupted]  # the server is told on the next connect
    again.close()


def test_an_id_claimed_unreceived_refuses_its_command_for_good(tmp_path: Path) -> None:
    """Asked about an id it never saw, the station claims it refused: the command, should it
    arrive later (a restart between included), is answered from the ledger, never run."""
    path = tmp_path / "station.outbox.db"
    ledger = CommandLedger(path)
    unseen = ledger.claim(ID, "", NOW, now_ms=NOW, state="rejected", detail=NOT_RECEIVED)
    assert unseen is None
    ledger.close()
    again = CommandLedger(path)
    refused = Entry(ID, "", "rejected", NOT_RECEIVED, {}, NOW)
    assert again.claim(ID, "Ping", NOW, now_ms=NOW + KEEP_PAST_EXPIRY_MS) == refused
    again.close()


def test_ids_are_forgotten_once_expired_past_the_leeway(tmp_path: Path) -> None:
    ledger = CommandLedger(tmp_path / "station.outbox.db")
    ledger.claim(ID, "Ping", NOW, now_ms=NOW - 1_000)
    ledger.claim(OTHER, "Ping", NOW + 60_000, now_ms=NOW - 1_000)
    assert ledger.prune(now_ms=NOW + KEEP_PAST_EXPIRY_MS) == 0  # within the leeway: kept
    assert ledger.prune(now_ms=NOW + KEEP_PAST_EXPIRY_MS + 1) == 1
    assert ledger.get(ID) is None and ledger.get(OTHER) is not None
    # A claim prunes too: the ledger holds no more than the commands still in their life.
    ledger.claim(ID, "Ping", NOW + 10**9, now_ms=NOW + 60_000 + KEEP_PAST_EXPIRY_MS + 1)
    assert ledger.count() == 1 and ledger.get(OTHER) is None
    ledger.close()


def test_the_ledger_shares_the_outbox_file_without_disturbing_it(tmp_path: Path) -> None:
    path = tmp_path / "station.outbox.db"
    outbox = Outbox(path)
    ledger = CommandLedger(path)
    outbox.append([(NOW, {"parts": 1})])
    ledger.claim(ID, "Ping", NOW + 30_000, now_ms=NOW)
    outbox.append([(NOW, {"parts": 2})])
    ledger.close()
    outbox.close()
    assert (summary(path).last_seq, summary(path).depth) == (2, 2)
    reopened = CommandLedger(path)
    assert reopened.get(ID) is not None
    reopened.close()
