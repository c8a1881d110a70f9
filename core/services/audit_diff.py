"""An audit entry's change in words: ``display name: (empty) → Ada``, never a Python repr.

Rules: each field that differs is one change; a field only ``after`` holds (a creation) reads
``field: new``, one only ``before`` holds (a deletion, a dropped table) ``field: was old``.
Empty text and None read "(empty)", an empty list or object "(none)", booleans "yes"/"no",
lists "a, b", objects "key: value, key: value". When both sides of a field are objects,
their keys are compared one by one (``units / temp: °C → °F``). A text that is an ISO 8601
time is handed to ``moment`` (the page shows it in the browser's zone; the CSV keeps it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

EMPTY = "(empty)"
NONE = "(none)"
ARROW = "→"
_MISSING = object()
# A timestamp as the services write them (``datetime.isoformat``): date, 'T', a clock time.
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?$")
# Field names whose plain spelling reads badly; the rest lose their underscores.
_FIELD_WORDS = {"is_active": "active", "prev": "previous"}
# Unit suffixes the services use in field names, shown as units: interval_s → interval (s).
_UNIT_SUFFIXES = ("_s", "_ms")

Moment = Callable[[datetime], str]


def _as_is(moment: datetime) -> str:
    return moment.isoformat()


@dataclass(frozen=True)
class FieldChange:
    """One field's change, in words; ``old``/``new`` None when that side lacks the field."""

    field: str
    old: str | None
    new: str | None

    def __str__(self) -> str:
        if self.old is None:
            return f"{self.field}: {self.new}"
        if self.new is None:
            return f"{self.field}: was {self.old}"
        return f"{self.field}: {self.old} {ARROW} {self.new}"


def field_words(name: str) -> str:
    """``display_name`` → ``display name``; ``interval_s`` → ``interval (s)``."""
    if name in _FIELD_WORDS:
        return _FIELD_WORDS[name]
    for suffix in _UNIT_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return f"{name[: -len(suffix)].replace('_', ' ')} ({suffix[1:]})"
    return name.replace("_", " ")


def words(value: object, moment: Moment = _as_is) -> str:
    """One value as a person reads it (see the module's rules)."""
    if value is None or value == "":
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        if _ISO_TIME.match(value):
            try:
                return moment(datetime.fromisoformat(value))
            except ValueError:
                return value
        return value
    if isinstance(value, Mapping):
        parts = [f"{field_words(str(k))}: {words(v, moment)}" for k, v in value.items()]
        return ", ".join(parts) or NONE
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(words(v, moment) for v in value) or NONE
    return str(value)


def changes(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    moment: Moment = _as_is,
) -> list[FieldChange]:
    """What changed from ``before`` to ``after``, field by field, in the order they were kept."""
    before, after = before or {}, after or {}
    keys = list(before) + [k for k in after if k not in before]
    found: list[FieldChange] = []
    for key in keys:
        old, new = before.get(key, _MISSING), after.get(key, _MISSING)
        if old == new:
            continue
        name = field_words(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            found += [
                FieldChange(f"{name} / {c.field}", c.old or EMPTY, c.new or EMPTY)
                for c in changes(old, new, moment)
            ]
            continue
        found.append(
            FieldChange(
                name,
                None if old is _MISSING else words(old, moment),
                None if new is _MISSING else words(new, moment),
            )
        )
    return found


def change_lines(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    moment: Moment = _as_is,
) -> list[str]:
    """``changes`` as lines of text: one per field."""
    return [str(c) for c in changes(before, after, moment)]
