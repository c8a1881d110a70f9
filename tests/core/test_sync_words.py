"""Synced rows, fields and values in words: names for ids, never a hash, and a stamp's time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from core.hlc import wall_time
from core.sync import words

OLGA, ADMIN, READ = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
NAMES: words.Names = {OLGA: ("olga", False), ADMIN: ("Admin", False), READ: ("devices:read", True)}


@pytest.mark.parametrize(
    ("entity", "key", "said"),
    [
        ("user", str(OLGA), "User olga"),
        ("user", str(uuid.uuid4()), "An unknown user"),
        ("role", str(ADMIN), "Role Admin"),
        ("user_role", f"{OLGA}:{ADMIN}", "olga's role Admin"),
        ("role_permission", f"{ADMIN}:{READ}", "Permission devices:read (deleted) of role Admin"),
        ("device_config", "press-07", "Configuration of press-07"),
        ("user", "not-a-uuid", "a user record"),
    ],
)
def test_a_row_is_named_never_shown_by_its_id(entity: str, key: str, said: str) -> None:
    assert words.subject(entity, key, NAMES) == said


@pytest.mark.parametrize(
    ("entity", "field", "value", "field_said", "value_said"),
    [
        (
            "user",
            "password_hash",
            "$argon2id$v=19$m=1024$c2FsdA$ZGlnZXN0",
            "password",
            "password changed",
        ),
        ("user", "is_active", False, "enabled", "disabled"),
        ("user", "display_name", "", "display name", "(empty)"),
        ("user_role", "deleted", True, "role given", "taken away"),
        ("role_permission", "deleted", False, "grant", "granted"),
        ("device_config", "desired.interval_s", None, "sampling interval", "unset"),
        ("device_config", "desired.interval_s", 2.5, "sampling interval", "2.5 s"),
        ("device_config", "desired.units", {"temp": "°C"}, "channel units", '{"temp": "°C"}'),
        ("device_config", "desired.other", 3, "setting other", "3"),
        ("device_config", "desired_version", 7, "configuration version", "7"),
    ],
)
def test_fields_and_values_in_words(
    entity: str, field: str, value: object, field_said: str, value_said: str
) -> None:
    assert words.field_words(entity, field) == field_said
    assert words.value_words(entity, field, value) == value_said


def test_a_password_hash_is_replaced_for_every_reader() -> None:
    hashed = "$argon2id$v=19$m=1024$c2FsdA$ZGlnZXN0"
    assert words.safe_value("user", "password_hash", hashed) == words.PASSWORD_CHANGED
    assert words.safe_value("user", "display_name", "Olga") == "Olga"


def test_a_stamps_wall_time_is_its_first_fifteen_digits() -> None:
    assert wall_time("001764170000123.000002.press-07") == datetime(
        2025, 11, 26, 15, 13, 20, 123000, tzinfo=UTC
    )
    for bad in ("", "yesterday", "001764170000123"):
        with pytest.raises(ValueError, match=r"."):
            wall_time(bad)
