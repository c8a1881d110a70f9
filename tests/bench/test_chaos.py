"""The chaos suite: its checks on crafted states (each can fail), and a short run end to end.

The short run starts everything as ``python -m bench.chaos`` does (its own PostgreSQL
cluster, Mosquitto, the server, three station processes behind fault proxies) and injects
a fault every ~3 s for 36 s: every kind comes up once. It takes ~70 s, most of it the
stations noticing a blackholed connection (twice their MQTT keepalive, 10 s) and the server's
restarts: the only way to see every guarantee hold through every fault in CI. A command a
fault left published but unanswered is asked about at its deadline and ends seconds later;
only one whose station cannot answer waits for the expiry grace (~10.5 min), hence RUN_S.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.chaos.checks import (
    CommandEvidence,
    ServerEvidence,
    StationEvidence,
    check_stream,
    command_findings,
)
from bench.chaos.faults import KINDS, schedule
from core.services.commands import EXPIRY_GRACE

ROOT = Path(__file__).resolve().parents[2]
# The run's own bounds (drain 60 s, commands 15 s) end it well before 240 s, unless a
# command was published and never answered: the server waits out the time a station could
# still accept it (core.services.commands.deadlines.EXPIRY_GRACE) before it calls it expired.
RUN_S = 240 + EXPIRY_GRACE.total_seconds()
POSTGRES = Path("/usr/lib/postgresql/15/bin/initdb")


def _station(
    last: int = 10, acked: int = 10, pending: frozenset[int] = frozenset()
) -> StationEvidence:
    return StationEvidence("chaos-0", "s1", last, acked, pending)


def _server(seqs: dict[int, int], *, watermark: int = 10, **extra: object) -> ServerEvidence:
    return ServerEvidence(
        {("s1", seq): n for seq, n in seqs.items()},
        {"s1": watermark},
        online=True,
        **extra,  # type: ignore[arg-type]
    )


def test_every_seq_stored_once_passes() -> None:
    found = check_stream(_station(), _server(dict.fromkeys(range(1, 11), 1)))
    assert found.ok
    assert (found.lost, found.doubled, found.undelivered) == ([], [], [])


def test_a_doubled_and_a_missing_seq_are_reported_as_such() -> None:
    stored = dict.fromkeys(range(1, 11), 1) | {4: 2}
    del stored[7]
    found = check_stream(_station(), _server(stored))
    assert found.doubled == [(4, 2)]
    assert found.lost == [7]
    assert found.lost_after_ack == [7]  # the station had deleted it: the server said it had it
    assert not found.ok


def test_a_seq_still_in_the_outbox_is_undelivered_not_lost_and_the_watermark_lags() -> None:
    stored = dict.fromkeys(range(1, 10), 1)
    found = check_stream(_station(acked=9, pending=frozenset({10})), _server(stored, watermark=9))
    assert (found.lost, found.undelivered) == ([], [10])
    assert not found.watermark_ok
    assert not found.ok


def test_declared_drops_and_quarantined_seqs_are_counted_apart() -> None:
    stored = {seq: 1 for seq in range(1, 11) if seq not in (2, 3, 5)}
    gaps = frozenset({("s1", 2), ("s1", 3)})
    found = check_stream(_station(), _server(stored, gaps=gaps, quarantined=frozenset({("s1", 5)})))
    assert (found.declared_dropped, found.quarantined, found.lost) == (2, 1, [])
    assert found.ok


def test_a_stray_stream_and_an_offline_device_fail() -> None:
    stored = dict.fromkeys(range(1, 11), 1)
    server = ServerEvidence({**{("s1", s): 1 for s in stored}, ("other", 1): 1}, {"s1": 10})
    found = check_stream(_station(), server)
    assert found.stray and not found.online and not found.ok


def _command(state: str, detail: str = "", **extra: object) -> CommandEvidence:
    fields: dict[str, object] = {
        "id": "c1", "device_id": "chaos-0", "kind": "UpdateConfig", "state": state,
        "detail": detail, "config_version": 3, "station_config_version": 3,
        "reported_version": 3, "version_outcome": "applied",
    } | extra  # fmt: skip
    return CommandEvidence(**fields)  # type: ignore[arg-type]


def test_commands_must_end_truthfully() -> None:
    expired = _command("expired", "not delivered", version_outcome=None)
    assert command_findings([_command("succeeded"), expired])["ok"]
    assert not command_findings([_command("sent")])["ok"]  # not terminal
    assert not command_findings([_command("failed")])["ok"]  # no reason given
    wrong = command_findings([_command("succeeded", station_config_version=2)])
    assert not wrong["ok"]  # succeeded, yet the station runs an older configuration
    assert not command_findings([_command("expired", "not delivered")])["ok"]  # yet applied


def test_the_schedule_rotates_every_kind_and_repeats_from_its_seed() -> None:
    faults = schedule(seconds=600, every_s=5.5, stations=6, seed=7)
    assert len(faults) >= 100
    assert {f.kind for f in faults[: len(KINDS)]} == set(KINDS)  # one shuffled round first
    again = schedule(seconds=600, every_s=5.5, stations=6, seed=7)
    assert [(f.kind, f.target, f.hold_s) for f in again] == [
        (f.kind, f.target, f.hold_s) for f in faults
    ]


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs the mosquitto binary")
@pytest.mark.skipif(not POSTGRES.exists(), reason="needs PostgreSQL 15's initdb")
def test_a_short_chaos_run_loses_and_doubles_nothing(tmp_path: Path) -> None:
    out = tmp_path / "report"
    command = [sys.executable, "-m", "bench.chaos", "--minutes", "0.6", "--stations", "3"]
    command += ["--every", "3", "--command-every", "2", "--command-timeout", "15"]
    command += ["--drain", "75", "--seed", "4242", "--out", str(out)]
    run = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=RUN_S, check=False
    )
    line = json.loads(run.stdout.strip().splitlines()[-1])
    assert (line["lost"], line["doubled"]) == (0, 0), run.stderr[-3000:]
    feasible = set(KINDS) - {"station_disk_full"}  # a small disk needs root to mount
    assert {k for k, n in line["faults_by_kind"].items() if n} >= feasible, line
    assert line["presence_online"] and line["drained"], run.stderr[-3000:]
    assert line["commands_terminal"], run.stderr[-3000:]
    assert line["ingest_kills_in_transaction"] >= 1
    # Every other target fails the run too (an untruthful command: see the report's problems).
    assert run.returncode == (0 if line["ok"] else 1), run.stderr[-3000:]
    assert {p.name for p in out.iterdir()} >= {"chaos.json", "summary.md", "timeline.svg"}
    assert "<svg" in (out / "timeline.svg").read_text()
