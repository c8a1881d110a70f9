"""How commands read to people: kinds, states, arguments and results in words, times zoned.

Everything a page shows of a command comes from here, so the device page, the commands
page and their tests say the same thing. What a station answered is untrusted: only the
figures a kind is known to report are shown, and only when they are whole numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from core.db.models import Command
from core.protocol import commands as protocol
from webui.components.browser_time import named
from webui.components.config_card import describe

IN_STEP_MS = 1000  # a station clock this close to the server's reads "in step": one-way latency


@dataclass(frozen=True)
class Kind:
    """A command kind as people read it: a label and one line saying what it does."""

    label: str
    explanation: str


@dataclass(frozen=True)
class State:
    """A command state as people read it: a label, the chip's colour, what it means."""

    label: str
    color: str  # a Quasar colour name
    meaning: str


KINDS: dict[str, Kind] = {
    protocol.PING: Kind("Ping", "Checks that the station answers: the round trip and its clock."),
    protocol.UPDATE_CONFIG: Kind(
        "Change settings",
        "Sends new settings; the station applies them as the next configuration version.",
    ),
    protocol.FLUSH_OUTBOX: Kind(
        "Flush outbox", "Asks the station to send every sample it still holds, now."
    ),
}

STATES: dict[str, State] = {
    "queued": State(
        "Queued", "grey-7", "Waiting to go out: it is sent once the station is online."
    ),
    "sent": State("Sent", "blue-7", "The broker has it; the station has not answered yet."),
    "delivered": State("Delivered", "indigo-7", "The station accepted it and is running it."),
    "succeeded": State("Succeeded", "positive", "The station ran it."),
    "failed": State("Failed", "negative", "The station ran it, and it did not work."),
    "rejected": State("Rejected", "deep-orange-9", "The station refused it without running it."),
    "expired": State("Expired", "amber-10", "Not delivered before its deadline."),
    "timed_out": State("Timed out", "orange-10", "Delivered, but no result before its deadline."),
    "canceled": State("Canceled", "blue-grey-7", "Withdrawn before it was sent."),
}


def kind_label(kind: str) -> str:
    """``Change settings`` for ``UpdateConfig``; an unknown kind as it is named."""
    known = KINDS.get(kind)
    return kind if known is None else known.label


def state_of(state: str) -> State:
    """How ``state`` reads (an unknown one as it is named, in grey)."""
    return STATES.get(state) or State(state.replace("_", " "), "grey-7", "")


def short_id(command: Command) -> str:
    """The first eight characters of the id: enough to tell commands apart in a tooltip."""
    return str(command.id)[:8]


def arguments(command: Command) -> str:
    """What the command asks: ``a sample every 2 s (configuration version 4)``."""
    if command.kind != protocol.UPDATE_CONFIG:
        return "no arguments" if not command.args else ", ".join(sorted(command.args))
    given = {k: v for k, v in command.args.items() if v is not None}
    removed = sorted(k for k, v in command.args.items() if v is None)
    parts = [describe(given)] if given else []
    if removed:
        parts.append("back to the station's own " + ", ".join(removed))
    text = "; ".join(parts)
    if command.config_version:
        text += f" (configuration version {command.config_version})"
    return text


def times(command: Command, zone: tzinfo) -> list[str]:
    """Each moment of the command's life so far, in ``zone``, named."""
    lines = [f"created {named(command.created_at, zone)}"]
    for word, moment in (
        ("sent", command.sent_at),
        ("delivered", command.delivered_at),
        ("ended", command.finished_at),
    ):
        if moment is not None:
            lines.append(f"{word} {named(moment, zone)}")
    if command.finished_at is None:
        lines.append(f"deadline {named(command.expires_at, zone)}")
    return lines


def outcome(command: Command, zone: tzinfo) -> str:
    """The detail and the kind's result in words ("" while there is nothing to say)."""
    parts = [command.detail] if command.detail else []
    if command.kind == protocol.PING and command.state == "succeeded":
        parts += _ping(command, zone)
    elif command.kind == protocol.FLUSH_OUTBOX and command.result:
        parts += _flush(command.result, command.detail)
    return " · ".join(parts)


def _count(result: dict[str, Any], name: str) -> int | None:
    value = result.get(name)
    return value if type(value) is int and value >= 0 else None


def _ping(command: Command, zone: tzinfo) -> list[str]:
    said = []
    if command.sent_at is not None and command.finished_at is not None:
        trip = max(0, round((command.finished_at - command.sent_at).total_seconds() * 1000))
        said.append(f"round trip {trip} ms")
    station_ms = _count(command.result, "station_time_ms")
    if station_ms is not None and command.finished_at is not None:
        station = datetime.fromtimestamp(station_ms / 1000, zone)
        skew = station_ms - round(command.finished_at.timestamp() * 1000)
        if abs(skew) < IN_STEP_MS:
            step = "in step with the server"
        else:
            step = f"{abs(skew) / 1000:.1f} s {'ahead of' if skew > 0 else 'behind'} the server"
        said.append(f"station clock {named(station, zone)}, {step}")
    uptime = _count(command.result, "uptime_s")
    if uptime is not None:
        said.append(f"up {_duration(uptime)}")
    return said


def _flush(result: dict[str, Any], detail: str) -> list[str]:
    said = []
    sent, acked, pending = (_count(result, k) for k in ("sent", "acked_seq", "pending"))
    if sent is not None:
        said.append(f"{sent} sample{'' if sent == 1 else 's'} sent")
    if acked is not None and f"seq {acked}" not in detail:  # the station may have said it
        said.append(f"acknowledged up to seq {acked}")
    if pending:
        said.append(f"{pending} still waiting")
    return said


def _duration(seconds: int) -> str:
    """``3 d 4 h``, ``2 h 5 min``, ``42 s``: the two largest units."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"
