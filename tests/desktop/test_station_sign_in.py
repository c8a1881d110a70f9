"""Operators sign in against the station's replica: right, wrong, unknown, disabled, deleted,
locked out with doubling, and a password changed in the browser once it has synced.
"""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core import edit_keys
from core.rbac import PERMISSIONS
from desktop.agent.replica import Replica, replica_path
from desktop.agent.sign_in import (
    BAD_CREDENTIALS,
    DISABLED,
    UNKNOWN_USER,
    WRONG_PASSWORD,
    Person,
    SignInRefused,
    sign_in,
)
from tests.desktop.replica_data import DEVICE, PASSWORD, ServerLog, sync

MAX_FAILURES, LOCK_S = 3, 10
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def attempt(replica: Replica, username: str, password: str, at: datetime = T0) -> Person:
    return sign_in(
        replica, username, password, max_failures=MAX_FAILURES, lock_seconds=LOCK_S, now=at
    )


def refused(replica: Replica, username: str, password: str, at: datetime = T0) -> str:
    with pytest.raises(SignInRefused) as caught:
        attempt(replica, username, password, at)
    return caught.value.reason


def locked_reason(until: datetime) -> str:
    return f"locked until {until.astimezone():%H:%M:%S}"


def test_the_right_password_signs_in_with_roles_and_permissions(
    replica: Replica, log: ServerLog
) -> None:
    ada = log.user("ada", roles=("Admin",), display_name="Ada Lovelace")
    log.user("vic", roles=("Viewer",))
    sync(replica, log)
    person = attempt(replica, "ada", PASSWORD)
    assert person == Person(ada, "ada", "Ada Lovelace", ("Admin",), frozenset(PERMISSIONS))
    assert person.may("users:manage") and person.is_admin
    viewer = attempt(replica, "vic", PASSWORD)
    assert viewer.permissions == {"telemetry:read", "devices:read"}
    assert not viewer.may("config:write") and not viewer.is_admin


def test_a_sign_in_derives_the_edit_key_and_shows_it_nowhere(
    replica: Replica, log: ServerLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = log.user("ada", roles=("Admin",))
    log.user("vic", roles=("Viewer",), is_active=False)
    sync(replica, log)
    derived: list[str] = []
    derive = edit_keys.derive

    def counted(password: str, user_id: uuid.UUID) -> bytes:
        derived.append(password)
        return derive(password, user_id)

    monkeypatch.setattr(edit_keys, "derive", counted)
    assert refused(replica, "ada", "not the password") == BAD_CREDENTIALS
    assert refused(replica, "vic", PASSWORD) == DISABLED
    assert derived == []  # refused sign-ins derive nothing
    person = attempt(replica, "ada", PASSWORD)
    assert derived == [PASSWORD]
    assert person.edit_key == derive(PASSWORD, ada)  # what the server derives from it too
    assert person.edit_key.hex() not in repr(person) and "edit_key" not in repr(person)
    with contextlib.closing(sqlite3.connect(replica.path)) as db:
        dump = "\n".join(db.iterdump())
    assert person.edit_key.hex() not in dump  # never in the replica file


def test_wrong_unknown_and_deleted_get_one_answer(replica: Replica, log: ServerLog) -> None:
    gone = log.user("gone")
    log.user("ada")
    log.delete(gone)
    sync(replica, log)
    assert refused(replica, "ada", "not the password") == BAD_CREDENTIALS
    assert refused(replica, "nobody", PASSWORD) == BAD_CREDENTIALS
    assert refused(replica, "gone", PASSWORD) == BAD_CREDENTIALS
    assert refused(replica, "", PASSWORD) == BAD_CREDENTIALS
    assert refused(replica, "x" * 65, PASSWORD) == BAD_CREDENTIALS


def test_the_cause_tells_a_wrong_password_from_an_unknown_name(
    replica: Replica, log: ServerLog
) -> None:
    """For ``station login``: the replica's users are listed to anyone at the station."""
    gone = log.user("gone")
    log.user("ada")
    log.delete(gone)
    sync(replica, log)
    causes = {}
    for username, password in (
        ("ada", "not the password"),
        ("nobody", PASSWORD),
        ("gone", PASSWORD),
    ):
        with pytest.raises(SignInRefused) as caught:
            attempt(replica, username, password, T0)
        causes[username] = caught.value.cause
    assert causes == {"ada": WRONG_PASSWORD, "nobody": UNKNOWN_USER, "gone": UNKNOWN_USER}


def test_a_disabled_user_is_told_so_only_with_the_right_password(
    replica: Replica, log: ServerLog
) -> None:
    ada = log.user("ada")
    sync(replica, log)
    assert attempt(replica, "ada", PASSWORD).username == "ada"
    log.disable(ada)
    sync(replica, log)
    assert refused(replica, "ada", "a guess") == BAD_CREDENTIALS
    assert refused(replica, "ada", PASSWORD) == DISABLED


def test_a_password_changed_in_the_browser_works_once_synced(
    replica: Replica, log: ServerLog
) -> None:
    ada = log.user("ada")
    sync(replica, log)
    log.set_password(ada, "a new password")
    assert attempt(replica, "ada", PASSWORD).username == "ada"  # the page has not come yet
    sync(replica, log)
    assert refused(replica, "ada", PASSWORD) == BAD_CREDENTIALS
    assert attempt(replica, "ada", "a new password").user_id == ada


def test_failures_lock_the_name_and_each_lock_doubles(replica: Replica, log: ServerLog) -> None:
    log.user("ada")
    sync(replica, log)
    for _ in range(MAX_FAILURES):  # the threshold's attempt locks at once
        assert refused(replica, "ada", "guess") == BAD_CREDENTIALS
    first = T0 + timedelta(seconds=LOCK_S)
    assert refused(replica, "ada", PASSWORD) == locked_reason(first)  # even the right one
    assert refused(replica, "ada", PASSWORD, first - timedelta(seconds=1)) == locked_reason(first)
    after = first + timedelta(seconds=1)
    assert refused(replica, "ada", "guess", after) == BAD_CREDENTIALS  # locks for twice as long
    second = after + timedelta(seconds=2 * LOCK_S)
    with pytest.raises(SignInRefused) as caught:
        attempt(replica, "ada", PASSWORD, second - timedelta(seconds=1))
    assert caught.value.reason == locked_reason(second) and caught.value.locked_until == second
    assert attempt(replica, "ada", PASSWORD, second).username == "ada"
    # A success starts the count again: the next lock is the first one again.
    later = second + timedelta(hours=1)
    for _ in range(MAX_FAILURES):
        assert refused(replica, "ada", "guess", later) == BAD_CREDENTIALS
    assert refused(replica, "ada", PASSWORD, later) == locked_reason(
        later + timedelta(seconds=LOCK_S)
    )


def test_unknown_names_lock_alike(replica: Replica, log: ServerLog) -> None:
    sync(replica, log)
    for _ in range(MAX_FAILURES):
        assert refused(replica, "nobody", "guess") == BAD_CREDENTIALS
    assert refused(replica, "nobody", "guess") == locked_reason(T0 + timedelta(seconds=LOCK_S))


def test_failures_stay_on_the_station_and_survive_a_restart(tmp_path: Path, log: ServerLog) -> None:
    log.user("ada")
    path = replica_path(tmp_path, DEVICE)

    def synced_rows() -> list[tuple[str, ...]]:
        with contextlib.closing(sqlite3.connect(path)) as db:
            return db.execute(
                "SELECT entity, key, field, value FROM fields UNION ALL "
                "SELECT change_id, user_id, username, changes FROM pending"
            ).fetchall()

    with Replica(path, device_id=DEVICE) as replica:
        sync(replica, log)
        before = synced_rows()
        for _ in range(MAX_FAILURES):
            refused(replica, "ada", "guess")
        assert replica.pending() == []  # nothing to send up
    assert synced_rows() == before
    with Replica(path, device_id=DEVICE) as replica:
        assert refused(replica, "ada", PASSWORD).startswith("locked until")
