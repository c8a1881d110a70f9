"""The audit page's filters: search, actor, action, target and time, read as an ``AuditQuery``.

Times are typed and read in the browser's zone (the hint names it); the query carries
them as aware times, so the database and the CSV see the same instant.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from nicegui import ui

from core.services.audit_search import MAX_TEXT, AuditQuery, families

ANY = ""  # a select's "any" choice (its value cannot be None and show a label)
CUSTOM = "custom"
RANGES: dict[str, tuple[str, timedelta | None]] = {
    ANY: ("Any time", None),
    "hour": ("Last hour", timedelta(hours=1)),
    "day": ("Last 24 hours", timedelta(days=1)),
    "week": ("Last 7 days", timedelta(days=7)),
    "month": ("Last 30 days", timedelta(days=30)),
    CUSTOM: ("From … to …", None),
}
TIME_FORMAT = "%Y-%m-%d %H:%M"
TARGET_KINDS = {
    ANY: "Any target",
    "user": "User",
    "role": "Role",
    "device": "Device",
    "command": "Command",
    "batch": "Bulk change",
    "table": "Telemetry table",
}
SEARCH_DEBOUNCE_MS = 400  # typing a word reads once, not once a letter


def zone_name(zone: tzinfo) -> str:
    """``Europe/Berlin``; ``UTC`` for UTC."""
    return str(getattr(zone, "key", None) or "UTC")


def action_choices(actions: list[str]) -> dict[str, str]:
    """Any action, then each family (``device (all)``) followed by its actions, then the rest."""
    choices: dict[str, str] = {ANY: "Any action"}
    for family in families(actions):
        choices[family] = f"{family} (all)"
        choices |= {a: f"  {a}" for a in actions if a.startswith(f"{family}.")}
    return choices | {a: a for a in actions if "." not in a}


def typed_time(text: str, zone: tzinfo) -> datetime | None:
    """A time typed as YYYY-MM-DD HH:MM in ``zone``; None if empty; ValueError in words."""
    if not text.strip():
        return None
    try:
        return datetime.strptime(text.strip(), TIME_FORMAT).replace(tzinfo=zone)
    except ValueError:
        msg = f"write the time as YYYY-MM-DD HH:MM ({zone_name(zone)})"
        raise ValueError(msg) from None


def _parse(text: str, zone: tzinfo, field: str) -> datetime | None:
    try:
        return typed_time(text, zone)
    except ValueError as error:
        raise ValueError(field, str(error)) from None


class AuditFilters:
    """The filter row; the view listens to its fields (``choices``, ``times``)."""

    def __init__(self, actions: list[str], actors: list[str]) -> None:
        self.actions = actions
        self.actors = actors

    def build(self) -> None:
        """Lay the filters out."""
        with ui.row().classes("w-full items-start gap-3"):
            self.text = ui.input("Search", placeholder="name, action, value…")
            # Quasar's debounce: the browser sends the text once typing pauses.
            self.text.props(f"clearable maxlength={MAX_TEXT} debounce={SEARCH_DEBOUNCE_MS}")
            self.text.classes("w-52").mark("audit-search")
            actors = {ANY: "Anyone"} | {a: a for a in self.actors}
            self.actor = ui.select(actors, value=ANY, label="Actor", with_input=True)
            self.actor.props("new-value-mode=add-unique").classes("w-40")
            self.actor.mark("audit-actor")
            self.action = ui.select(self._action_choices(), value=ANY, label="Action")
            self.action.props("options-dense").classes("w-44").mark("audit-action")
            self.kind = ui.select(TARGET_KINDS, value=ANY, label="Target").classes("w-36")
            self.kind.mark("audit-target-kind")
            ranges = {key: label for key, (label, _) in RANGES.items()}
            self.range = ui.select(ranges, value=ANY, label="When").classes("w-36")
            self.range.mark("audit-range")
        with ui.row().classes("items-start gap-4") as custom:
            self.since = ui.input("From", placeholder="YYYY-MM-DD HH:MM").mark("audit-since")
            self.until = ui.input("To", placeholder="YYYY-MM-DD HH:MM").mark("audit-until")
            self.zone_hint = ui.label().classes("self-center text-sm text-slate-600")
            self.zone_hint.mark("audit-zone")
        custom.bind_visibility_from(self.range, "value", lambda v: v == CUSTOM)

    def choices(self) -> list[ui.input | ui.select]:
        """The fields that filter as soon as they change: the search and the four choices."""
        return [self.text, self.actor, self.action, self.kind, self.range]

    def times(self) -> list[ui.input]:
        """The typed times: they filter once finished (Enter, or leaving the field)."""
        return [self.since, self.until]

    def _action_choices(self) -> dict[str, str]:
        return action_choices(self.actions)

    def show_zone(self, zone: tzinfo) -> None:
        """Say which zone typed times are read in."""
        self.zone_hint.text = f"Times are read in {zone_name(zone)}."

    def query(self, zone: tzinfo) -> AuditQuery:
        """The filters as chosen; ValueError(field, message) for a time not understood."""
        self.since.error = self.until.error = None
        since = until = None
        key = str(self.range.value)
        span = RANGES.get(key, ("", None))[1]
        if span is not None:
            since = datetime.now(UTC) - span
        elif key == CUSTOM:
            since = _parse(str(self.since.value or ""), zone, "From")
            until = _parse(str(self.until.value or ""), zone, "To")
            if since is not None and until is not None and since >= until:
                msg = "must be later than From"
                raise ValueError("To", msg)
        return AuditQuery(
            actor=self.actor.value or None,
            action=self.action.value or None,
            target_type=self.kind.value or None,
            since=since,
            until=until,
            text=str(self.text.value or "").strip() or None,
        )

    def show_error(self, error: ValueError) -> None:
        """Put a time's error under its field."""
        field, message = error.args
        (self.since if field == "From" else self.until).error = message

    def params(self, query: AuditQuery) -> dict[str, Any]:
        """``query`` as the export's URL parameters (times in UTC)."""
        return {
            "actor": query.actor,
            "action": query.action,
            "target_type": query.target_type,
            "since": query.since.astimezone(UTC).isoformat() if query.since else None,
            "until": query.until.astimezone(UTC).isoformat() if query.until else None,
            "q": query.text,
        }
