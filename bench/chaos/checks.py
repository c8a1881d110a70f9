"""What must hold at the end of a chaos run, checked against what was read (bench.chaos.evidence).

Pure functions over plain data, so a crafted state (a doubled seq, a missing one) proves
each check can fail. A sample is stored once per ``(device_id, stream, seq)``; the table's
key also holds ``ts``, so the same seq stored twice with two timestamps would pass the key:
it is counted here by seq alone. Per station stream:

- **doubled**: a seq stored more than once;
- **lost**: a seq up to the station's last that is neither stored, nor in the station's
  outbox still, nor declared dropped (the outbox cap's reported ranges) or quarantined —
  those are counted apart. ``lost_after_ack`` are the lost seqs the station had deleted
  (at or below its ack): what the server told it it had and has not;
- **undelivered**: seqs still in the outbox, not stored: the outbox did not drain;
- **watermark**: the server's acked seq, and the station's, equal the station's last seq;
- **stray**: stored seqs past the station's last, or streams of the device it never had.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from core.protocol.commands import TERMINAL

SHOWN = 20  # seqs listed per finding; the counts are exact


@dataclass(frozen=True)
class StationEvidence:
    """What a station's own outbox says at the end."""

    device_id: str
    stream: str
    last_seq: int
    acked_seq: int
    pending: frozenset[int] = frozenset()  # seqs still in its outbox
    dropped: frozenset[int] = frozenset()  # seqs its cap dropped, not yet acked by the server
    config_version: int = 0


@dataclass(frozen=True)
class ServerEvidence:
    """What the database says of one device at the end."""

    stored: Mapping[tuple[str, int], int]  # (stream, seq) → rows stored
    watermarks: Mapping[str, int]  # stream → acked seq
    gaps: frozenset[tuple[str, int]] = frozenset()  # (stream, seq) the station reported dropped
    quarantined: frozenset[tuple[str, int]] = frozenset()
    online: bool = False
    reported_version: int = 0


@dataclass
class StreamFindings:
    """The checks of one station's stream."""

    device_id: str
    stream: str
    last_seq: int
    stored: int
    doubled: list[tuple[int, int]] = field(default_factory=list)  # (seq, times stored)
    lost: list[int] = field(default_factory=list)
    lost_after_ack: list[int] = field(default_factory=list)
    undelivered: list[int] = field(default_factory=list)
    declared_dropped: int = 0
    quarantined: int = 0
    server_watermark: int = 0
    station_acked: int = 0
    stray: list[str] = field(default_factory=list)
    online: bool = False

    @property
    def watermark_ok(self) -> bool:
        """Both watermarks reached the station's last seq."""
        return self.server_watermark == self.last_seq == self.station_acked

    @property
    def ok(self) -> bool:
        """Nothing lost, doubled, undelivered or stray; watermarks caught up; online."""
        return (
            not (self.doubled or self.lost or self.undelivered or self.stray)
            and self.watermark_ok
            and self.online
        )

    def summary(self) -> dict[str, object]:
        """The findings as JSON (seq lists cut to SHOWN, counts exact)."""
        return {
            "device_id": self.device_id,
            "stream": self.stream,
            "last_seq": self.last_seq,
            "stored": self.stored,
            "doubled": len(self.doubled),
            "doubled_seqs": self.doubled[:SHOWN],
            "lost": len(self.lost),
            "lost_seqs": self.lost[:SHOWN],
            "lost_after_ack": len(self.lost_after_ack),
            "undelivered": len(self.undelivered),
            "undelivered_seqs": self.undelivered[:SHOWN],
            "declared_dropped": self.declared_dropped,
            "quarantined": self.quarantined,
            "server_watermark": self.server_watermark,
            "station_acked": self.station_acked,
            "watermark_ok": self.watermark_ok,
            "stray": self.stray,
            "online": self.online,
            "ok": self.ok,
        }


def check_stream(station: StationEvidence, server: ServerEvidence) -> StreamFindings:
    """Every check of one station against what the server stored of it."""
    stream = station.stream
    found = StreamFindings(
        station.device_id,
        stream,
        station.last_seq,
        stored=sum(1 for s, _ in server.stored if s == stream),
        server_watermark=server.watermarks.get(stream, 0),
        station_acked=station.acked_seq,
        online=server.online,
    )
    for (s, seq), times in sorted(server.stored.items()):
        if s == stream and times > 1:
            found.doubled.append((seq, times))
        if s == stream and seq > station.last_seq:
            found.stray.append(f"seq {seq} stored past the station's last ({station.last_seq})")
    for s in sorted({s for s, _ in server.stored} | set(server.watermarks)):
        if s != stream:
            found.stray.append(f"stream {s} on the server, not the station's")
    for seq in range(1, station.last_seq + 1):
        key = (stream, seq)
        if key in server.stored:
            continue
        if key in server.gaps or seq in station.dropped:
            found.declared_dropped += 1
        elif key in server.quarantined:
            found.quarantined += 1
        elif seq in station.pending:
            found.undelivered.append(seq)
        else:
            found.lost.append(seq)
            if seq <= station.acked_seq:
                found.lost_after_ack.append(seq)
    return found


@dataclass(frozen=True)
class CommandEvidence:
    """A command as the server holds it at the end, beside what its station says it runs."""

    id: str
    device_id: str
    kind: str
    state: str
    detail: str
    config_version: int | None
    station_config_version: int  # from the station's own outbox
    reported_version: int  # what the server heard the station applied
    version_outcome: str | None = None  # the config version's outcome, for UpdateConfig
    times: str = ""  # when it was created, sent, due, ended; its version's outcome: evidence


def untruths(command: CommandEvidence) -> list[str]:
    """What is wrong with a command's end state: empty when it is terminal and truthful."""
    wrong: list[str] = []
    if command.state not in TERMINAL:
        wrong.append(f"not terminal: {command.state}")
    elif command.state != "succeeded" and not command.detail.strip():
        wrong.append(f"{command.state} without a reason")
    ended_unapplied = command.state in ("expired", "canceled")
    if command.kind == "UpdateConfig" and ended_unapplied and command.version_outcome == "applied":
        wrong.append(f"{command.state}, but the station applied its version")
    if command.kind == "UpdateConfig" and command.state == "succeeded":
        version = command.config_version or 0
        if command.station_config_version < version:
            wrong.append(
                f"succeeded, but the station runs config {command.station_config_version}, "
                f"not {version}"
            )
        if command.reported_version < version:
            wrong.append(f"succeeded, but the server heard {command.reported_version} applied")
        if command.version_outcome not in (None, "applied", "superseded"):
            wrong.append(f"succeeded, but version {version} was {command.version_outcome}")
    return wrong


def command_findings(commands: Iterable[CommandEvidence]) -> dict[str, object]:
    """The commands by kind and end state, and every one not terminal or not truthful."""
    by_state: dict[str, dict[str, int]] = {}
    wrong: list[dict[str, object]] = []
    otherwise: list[dict[str, object]] = []  # ended, not succeeded: the reasons given
    for command in commands:
        if command.state != "succeeded" and len(otherwise) < SHOWN:
            otherwise.append(
                {
                    "kind": command.kind,
                    "device_id": command.device_id,
                    "state": command.state,
                    "detail": command.detail[:200],
                }
            )
        states = by_state.setdefault(command.kind, {})
        states[command.state] = states.get(command.state, 0) + 1
        if problems := untruths(command):
            wrong.append(
                {
                    "id": command.id,
                    "device_id": command.device_id,
                    "kind": command.kind,
                    "state": command.state,
                    "detail": command.detail,
                    "problems": problems,
                    "times": command.times,
                }
            )
    return {"by_kind": by_state, "wrong": wrong, "not_succeeded": otherwise, "ok": not wrong}
