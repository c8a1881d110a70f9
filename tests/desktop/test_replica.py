"""The station's replica: last writer wins per field in any order, tombstones, the pending
overlay, gaps, restarts, and a read-only reader beside the writer — on real SQLite files.
"""

from __future__ import annotations

import contextlib
import json
import random
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import edit_keys
from core.hlc import Clock, Stamp
from core.protocol.sync import MAX_KEYS, Answer, ChangePage, FieldChange, Up, read_up
from desktop.agent import replica_schema
from desktop.agent.directory import PersonRecord
from desktop.agent.edits import UNSIGNED
from desktop.agent.replica import Replica, replica_path
from desktop.agent.replica_schema import MIGRATIONS
from desktop.agent.sign_in import Person
from tests.desktop.replica_data import DEVICE, PASSWORD, ServerLog, signed_in


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return replica_path(tmp_path, DEVICE)


@pytest.fixture
def replica(path: Path) -> Iterator[Replica]:
    with Replica(path, device_id=DEVICE) as opened:
        yield opened


def canonical(path: Path) -> list[tuple[str, str, str, str, str]]:
    """The canonical fields table as stored."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("SELECT * FROM fields ORDER BY entity, key, field").fetchall()


def single(change: FieldChange, after: int = 0) -> ChangePage:
    """A page holding one change (for delivering changes one by one, in any order)."""
    return ChangePage(DEVICE, after, after, after, (change,))


def test_the_file_is_named_after_the_device_and_migrated(tmp_path: Path) -> None:
    path = replica_path(tmp_path / "stations", DEVICE)
    assert path == tmp_path / "stations" / "press-07.replica.sqlite"
    Replica(path, device_id=DEVICE).close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) == 2
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_later_schema_step_runs_once_on_an_existing_file(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = ServerLog().builtins()
    log.user("ada", roles=("Admin",))
    with Replica(path, device_id=DEVICE) as first:
        assert first.apply_page(log.page())
    step = ("CREATE TABLE notes (id INTEGER PRIMARY KEY)",)
    monkeypatch.setattr(replica_schema, "MIGRATIONS", [*MIGRATIONS, step])
    for _ in range(2):  # a second open finds v3 and runs nothing (CREATE TABLE would fail)
        with Replica(path, device_id=DEVICE) as again:
            assert [p.username for p in again.people()] == ["ada"]
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS) + 1
    monkeypatch.setattr(replica_schema, "MIGRATIONS", MIGRATIONS)
    with pytest.raises(RuntimeError, match="newer than this program"):
        Replica(path, device_id=DEVICE)


def test_any_order_and_duplicates_end_the_same(tmp_path: Path) -> None:
    log = ServerLog().builtins()
    ada = log.user("ada", roles=("Admin",), display_name="Ada")
    bob = log.user("bob")
    log.set("user", ada, display_name="Ada L.")
    log.grant_role(bob, "Viewer", granted=False)
    log.grant_role(bob, "Admin")
    log.set("user", ada, display_name="Ada Lovelace")
    log.disable(bob)
    in_order = replica_path(tmp_path / "in-order", DEVICE)
    with Replica(in_order, device_id=DEVICE) as replica:
        for page in log.pages(limit=7):
            assert replica.apply_page(page)
        assert replica.cursor == log.head
        people = {p.username: p for p in replica.people()}
    assert people["ada"].display_name == "Ada Lovelace"
    assert people["bob"].roles == ("Admin",) and not people["bob"].is_active
    expected = canonical(in_order)
    shuffler = random.Random(14)
    for attempt in range(5):
        shuffled = log.changes * 2  # every change delivered twice
        shuffler.shuffle(shuffled)
        path = replica_path(tmp_path / f"shuffled-{attempt}", DEVICE)
        with Replica(path, device_id=DEVICE) as replica:
            for change in shuffled:
                replica.apply_page(single(change))
            assert replica.people() == list(people.values())
        assert canonical(path) == expected


def test_a_page_keeps_the_newest_of_one_field_whatever_its_order(replica: Replica) -> None:
    clock = Clock("server")
    old, new = clock.now(), clock.now()
    user = str(uuid.uuid4())
    changes = (
        FieldChange("user", user, "display_name", "newest", new),
        FieldChange("user", user, "username", "ada", old),
        FieldChange("user", user, "display_name", "older", old),
    )
    assert replica.apply_page(ChangePage(DEVICE, 0, 3, 3, changes))
    assert replica.find("ada").display_name == "newest"  # type: ignore[union-attr]


def test_tombstones_remove_users_roles_and_links(replica: Replica) -> None:
    log = ServerLog().builtins()
    ada = log.user("ada", roles=("Admin",))
    bob = log.user("bob", roles=("Viewer",))
    operators = log.role("Operators", ["commands:send", "telemetry:read"])
    carl = log.user("carl", roles=("Operators", "Viewer"))
    replica.apply_page(log.page())
    carl_seen = replica.find("carl")
    assert carl_seen is not None
    assert carl_seen.roles == ("Operators", "Viewer")
    assert carl_seen.permissions == {"commands:send", "telemetry:read", "devices:read"}
    cursor = log.head
    log.delete(bob)
    log.set("role", operators, deleted=True)
    log.grant_permission("Viewer", "devices:read", granted=False)
    assert replica.apply_page(log.page(cursor))
    assert [p.username for p in replica.people()] == ["ada", "carl"]
    assert replica.find("bob") is None and replica.person(bob) is None
    carl_now = replica.find("carl")
    assert carl_now is not None
    assert carl_now.roles == ("Viewer",) and carl_now.permissions == {"telemetry:read"}
    assert [r.name for r in replica.roles()] == ["Admin", "Viewer"]
    admin = replica.person(ada)
    assert admin is not None and admin.is_admin
    assert admin.permissions == set(replica.permission_names())
    cursor = log.head
    log.set("user", bob, deleted=False, is_active=True)  # restored: a later stamp wins
    replica.apply_page(log.page(cursor))
    assert [p.username for p in replica.people()] == ["ada", "bob", "carl"]
    assert carl in {p.user_id for p in replica.people()}


def test_pending_edits_overlay_until_answered(replica: Replica) -> None:
    log = ServerLog().builtins()
    ada = log.user("ada", roles=("Admin",), display_name="Ada")
    replica.apply_page(log.page())
    author = signed_in(replica.person(ada))
    edit = replica.record_edit(author, [("user", str(ada), "display_name", "Countess")])
    assert edit.user_id == ada and edit.username == "ada"
    assert len({c.stamp for c in edit.changes}) == 1
    assert replica.pending() == [edit]
    assert replica.status().pending == 1
    assert replica.find("ada").display_name == "Countess"  # type: ignore[union-attr]
    stored = {row[:3]: row[3] for row in canonical(replica.path)}
    assert stored["user", str(ada), "display_name"] == '"Ada"'  # the canonical copy untouched
    refused = Answer(edit.change_id, accepted=False, reason="not an Admin then")
    stranger = Answer(uuid.uuid4(), accepted=True)
    assert replica.settle([refused, stranger]) == [(edit, refused)]
    assert replica.pending() == [] and replica.settle([refused]) == []
    assert replica.find("ada").display_name == "Ada"  # type: ignore[union-attr]  # reverted


def test_a_newer_canonical_value_beats_a_pending_one(replica: Replica) -> None:
    log = ServerLog().builtins()
    ada = log.user("ada", roles=("Admin",), display_name="Ada")
    replica.apply_page(log.page())
    author = signed_in(replica.person(ada))
    replica.record_edit(author, [("user", str(ada), "display_name", "from the station")])
    edited = Stamp.parse(replica.pending()[0].changes[0].stamp).wall_ms
    log.clock = Clock("server", wall=lambda: edited + 1)
    cursor = log.head
    log.set("user", ada, display_name="from the browser")
    replica.apply_page(log.page(cursor))
    assert replica.find("ada").display_name == "from the browser"  # type: ignore[union-attr]
    assert replica.status().pending == 1  # still waiting for its answer


def test_an_edit_must_name_station_writable_fields(replica: Replica) -> None:
    log = ServerLog().builtins()
    ada = log.user("ada", roles=("Admin",))
    replica.apply_page(log.page())
    author = signed_in(replica.person(ada))
    user = str(ada)
    bad: list[tuple[list[tuple[str, str, str, Any]], str]] = [
        ([("permission", str(uuid.uuid4()), "name", "x")], "cannot change 'permission'"),
        ([("user", user, "failed_logins", 0)], "no field 'failed_logins'"),
        ([("user", "not-a-uuid", "display_name", "x")], "bad user key"),
        ([("user", user, "display_name", object())], "not a JSON value"),
        ([], "1 to 64 changes"),
        ([("user", user, "display_name", "a"), ("user", user, "display_name", "b")], "once"),
    ]
    for changes, reason in bad:
        with pytest.raises(ValueError, match=reason):
            replica.record_edit(author, changes)
    assert replica.pending() == []


def test_an_edit_is_signed_by_its_author_and_carries_the_keys_of_the_passwords_it_sets(
    path: Path,
) -> None:
    log = ServerLog().builtins()
    ada = log.user("ada", roles=("Admin",))
    nina, nina_key = uuid.uuid4(), edit_keys.derive("ninas password", uuid.UUID(int=0))
    made = [("user", str(nina), "username", "nina"), ("user", str(nina), "password_hash", "$a")]
    with Replica(path, device_id=DEVICE) as replica:
        replica.apply_page(log.page())
        author = signed_in(replica.person(ada))
        assert author.edit_key is not None
        edit = replica.record_edit(author, made, keys={nina: nina_key})
        assert edit.keys == {nina: nina_key.hex()}
        assert edit_keys.check(author.edit_key, edit, edit.proof)
        assert not edit_keys.check(edit_keys.derive("a guess", ada), edit, edit.proof)
        unsigned = Person.of(author_record(replica, ada))  # no sign-in derived a key
        rename = [("user", str(ada), "display_name", "Ada")]
        with pytest.raises(ValueError, match=r"^sign in again to make changes$"):
            replica.record_edit(unsigned, rename)
        with pytest.raises(ValueError, match="only for the passwords it sets"):
            replica.record_edit(author, rename, keys={ada: nina_key})
        many = {uuid.uuid4(): nina_key for _ in range(MAX_KEYS + 1)}
        with pytest.raises(ValueError, match=f"at most {MAX_KEYS}"):
            replica.record_edit(author, made, keys=many)
        assert replica.pending() == [edit]
    with Replica(path, device_id=DEVICE) as reopened:  # proof and keys wait across a restart
        [waiting] = reopened.pending()
    assert (waiting, waiting.proof, waiting.keys) == (edit, edit.proof, edit.keys)
    read = read_up(Up(DEVICE, (waiting,)).encode(), DEVICE)
    assert isinstance(read, Up) and edit_keys.check(author.edit_key, read.edits[0], edit.proof)
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert author.edit_key.hex() not in "\n".join(db.iterdump())  # the signer's key: never


def author_record(replica: Replica, user_id: uuid.UUID) -> PersonRecord:
    record = replica.person(user_id)
    assert record is not None
    return record


def test_an_edit_left_pending_by_schema_v1_goes_up_unsigned_and_is_reverted(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Edits were not signed before v2: the server refuses such an edit, which reverts it."""
    log = ServerLog().builtins()
    ada = log.user("ada", roles=("Admin",), display_name="Ada")
    monkeypatch.setattr(replica_schema, "MIGRATIONS", MIGRATIONS[:1])
    with Replica(path, device_id=DEVICE) as old:
        old.apply_page(log.page())
    change = FieldChange("user", str(ada), "display_name", "v1", Clock(DEVICE).now())
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute(
            "INSERT INTO pending (change_id, user_id, username, stamp, changes, created_at)"
            " VALUES (?, ?, 'ada', ?, ?, '2025-03-01T08:00:00+00:00')",
            (str(uuid.UUID(int=7)), str(ada), change.stamp, f"[{json.dumps(change.to_wire())}]"),
        )
    monkeypatch.setattr(replica_schema, "MIGRATIONS", MIGRATIONS)
    with Replica(path, device_id=DEVICE) as replica:
        [left] = replica.pending()
        assert (left.change_id, left.changes, left.keys) == (uuid.UUID(int=7), (change,), {})
        assert left.proof == UNSIGNED
        read = read_up(Up(DEVICE, (left,)).encode(), DEVICE)  # well-formed: the server answers
        assert isinstance(read, Up) and read.edits == (left,)
        key = edit_keys.derive(PASSWORD, ada)
        assert not edit_keys.check(key, left, left.proof)  # nobody's key makes it
        assert replica.find("ada").display_name == "v1"  # type: ignore[union-attr]
        refused = Answer(left.change_id, False, "not signed with ada's current password")
        assert replica.settle([refused]) == [(left, refused)]
        assert replica.find("ada").display_name == "Ada"  # type: ignore[union-attr]


def test_a_gap_leaves_the_cursor_and_the_next_page_in_order_moves_it(replica: Replica) -> None:
    log = ServerLog().builtins()
    for n in range(6):
        log.user(f"user-{n}", password_hash="x")
    first, second, third = log.page(0, 20), log.page(20, 10), log.page(30)
    assert replica.apply_page(first) and replica.cursor == 20
    assert not replica.apply_page(third)  # after 30, but the replica holds up to 20
    assert replica.cursor == 20
    assert replica.status().cursor == 20
    assert replica.apply_page(second) and replica.cursor == 30
    assert replica.apply_page(third) and replica.cursor == log.head
    assert replica.apply_page(first) and replica.cursor == log.head  # an old page: no step back
    assert len(replica.people()) == 6


def test_a_page_for_another_device_is_refused_whole(replica: Replica) -> None:
    log = ServerLog(device_id="lathe-02").builtins()
    with pytest.raises(ValueError, match="lathe-02"):
        replica.apply_page(log.page())
    assert replica.cursor == 0 and replica.roles() == []


def test_a_restart_keeps_fields_cursor_pending_and_the_clock(path: Path) -> None:
    log = ServerLog().builtins()
    ada = log.user("ada", roles=("Admin",), display_name="Ada")
    ahead = Clock("server", wall=lambda: 10**14)  # a stamp from far ahead of this machine
    log.clock = ahead
    log.set("user", ada, display_name="Ada from the future")
    with Replica(path, device_id=DEVICE) as replica:
        assert replica.apply_page(log.page())
        author = signed_in(replica.person(ada))
        edit = replica.record_edit(author, [("user", str(ada), "display_name", "mine")])
        before = replica.status()
    with Replica(path, device_id=DEVICE) as replica:
        assert replica.status() == before and before.last_sync_at is not None
        assert replica.pending() == [edit]
        assert replica.find("ada").display_name == "mine"  # type: ignore[union-attr]
        again = replica.record_edit(author, [("user", str(ada), "display_name", "again")])
    assert again.changes[0].stamp > edit.changes[0].stamp > log.changes[-1].stamp
    assert Stamp.parse(again.changes[0].stamp).node == DEVICE


def test_a_reader_beside_the_writer_sees_its_commits_and_writes_nothing(path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        Replica(path, device_id=DEVICE, read_only=True)
    assert not path.exists()
    log = ServerLog().builtins()
    log.user("ada", roles=("Admin",))
    with Replica(path, device_id=DEVICE) as writer:
        writer.apply_page(log.page())
        with Replica(path, device_id=DEVICE, read_only=True) as reader:
            assert [p.username for p in reader.people()] == ["ada"]
            cursor = log.head
            log.user("bob")
            uri = f"{path.resolve().as_uri()}?mode=ro"
            with contextlib.closing(sqlite3.connect(uri, uri=True, isolation_level=None)) as held:
                held.execute("BEGIN")
                held.execute("SELECT count(*) FROM fields").fetchone()
                # A read transaction held open beside it does not stop the writer.
                assert writer.apply_page(log.page(cursor))
            assert [p.username for p in reader.people()] == ["ada", "bob"]
            assert reader.status().cursor == writer.cursor == log.head
            with pytest.raises(RuntimeError, match="read-only"):
                reader.clear_sign_in_failures("ada")


def test_a_thousand_people_in_one_page_after_another(replica: Replica) -> None:
    log = ServerLog().builtins()
    for n in range(1000):
        log.user(f"operator-{n:04}", password_hash="not-a-hash")
    pages = log.pages()
    assert all(len(page.changes) == 500 for page in pages[:-1])
    for page in pages:
        assert replica.apply_page(page)
    people = replica.people()
    assert len(people) == replica.status().users == 1000
    assert people[0].username == "operator-0000" and people[0].roles == ("Viewer",)
