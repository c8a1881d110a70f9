"""An audit entry's change in words: what a person reads instead of Python's values."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from core.services.audit_diff import change_lines, field_words, words


def test_values_read_as_words_never_as_reprs() -> None:
    assert words(None) == "(empty)"
    assert words("") == "(empty)"
    assert words(True) == "yes"
    assert words(False) == "no"
    assert words([]) == "(none)"
    assert words(["Admin", "Viewer"]) == "Admin, Viewer"
    assert words({"temp": "°C", "rpm": "1/min"}) == "temp: °C, rpm: 1/min"
    assert words({"interval_s": 2}) == "interval (s): 2"
    assert words(0) == "0"


def test_field_names_lose_their_code_spelling() -> None:
    assert field_words("display_name") == "display name"
    assert field_words("is_active") == "active"
    assert field_words("locked_for_s") == "locked for (s)"
    assert field_words("s") == "s"


def test_only_what_changed_is_listed_one_line_a_field() -> None:
    before = {"display_name": None, "is_active": True, "roles": ["Viewer"]}
    after = {"display_name": "Vic", "is_active": False, "roles": ["Viewer"]}
    assert change_lines(before, after) == ["display name: (empty) → Vic", "active: yes → no"]


def test_creations_deletions_and_objects_on_both_sides() -> None:
    assert change_lines(None, {"name": "Kiln", "enabled": True}) == ["name: Kiln", "enabled: yes"]
    assert change_lines({"rows": 1200}, None) == ["rows: was 1200"]
    units = change_lines({"units": {"temp": "°C"}}, {"units": {"temp": "°F", "rpm": "1/min"}})
    assert units == ["units / temp: °C → °F", "units / rpm: (empty) → 1/min"]
    assert change_lines({"a": 1}, {"a": 1}) == []


def test_times_in_the_fields_are_handed_to_the_reader() -> None:
    tokyo = ZoneInfo("Asia/Tokyo")

    def moment(at: datetime) -> str:
        return f"{at.astimezone(tokyo):%H:%M %Z}"

    lines = change_lines(None, {"since": "2026-11-30T01:00:00+00:00", "note": "2026 plan"}, moment)
    assert lines == ["since: 10:00 JST", "note: 2026 plan"]
