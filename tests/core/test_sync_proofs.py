"""A station's edit counts only if it proves its author knew their current password.

The server holds each user's edit key (derived from the password where it saw it in clear:
set on the web, or a web sign-in) and checks every station edit's proof against the key
of the user it names, as it is now. A compromised station, which holds every password hash
but no key, cannot make an edit in an Admin's name.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

import pytest
from sqlalchemy import select

from core import edit_keys, hlc
from core.db.engine import Database
from core.db.models import AuditEntry, User
from core.errors import AuthError
from core.passwords import hash_password, verify_password
from core.protocol.sync import Answer, Edit
from core.rbac import ADMIN, VIEWER, builtin_id
from core.services import auth, devices, sync_inbox, users
from core.services.users import console_actor
from core.settings import Settings
from tests.core.station_edits import edit, station_stamp

DEVICE = "press-1"
ROOT = console_actor("root")
PASSWORD = "long enough"
NEW_PASSWORD = "a brand new one"
VIEWER_ROLE = str(builtin_id("role", VIEWER))


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    name: str

    @property
    def key(self) -> str:
        return str(self.id)

    def edit_key(self, password: str = PASSWORD) -> bytes:
        """What a station derives when they sign in there with ``password``."""
        return edit_keys.derive(password, self.id)


@dataclass(frozen=True)
class People:
    ada: Person  # Admin
    olga: Person  # Viewer


@pytest.fixture(autouse=True)
def _own_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh server clock: a stamp observed here never pushes other tests' clocks ahead."""
    monkeypatch.setattr(hlc, "_process_clock", hlc.Clock("server"))


@pytest.fixture
async def people(database: Database) -> People:
    async with database.session() as session:
        made = {}
        for name, role in (("ada", ADMIN), ("olga", VIEWER)):
            user = await users.create_user(
                session, actor=ROOT, username=name, password=PASSWORD, roles=[role]
            )
            made[name] = Person(user.id, name)
        await devices.create_device(session, actor=ROOT, device_id=DEVICE)
    return People(**made)


def _by(
    person: Person,
    *changes: tuple[str, str, str, object],
    key: bytes | None = None,
    keys: dict[uuid.UUID, bytes] | None = None,
) -> Edit:
    signing = person.edit_key() if key is None else key
    return edit(person.id, person.name, station_stamp(DEVICE), *changes, key=signing, keys=keys)


async def _send(database: Database, settings: Settings, sent: Edit) -> Answer:
    async with database.session() as session:
        return await sync_inbox.receive(session, device_id=DEVICE, edit=sent, settings=settings)


async def _user(database: Database, person: Person | uuid.UUID) -> User:
    async with database.session() as session:
        user = await session.get(User, person.id if isinstance(person, Person) else person)
    assert user is not None
    return user


async def _refusals(database: Database) -> list[AuditEntry]:
    async with database.session() as session:
        query = select(AuditEntry).where(AuditEntry.action == "sync.refused")
        return list(await session.scalars(query.order_by(AuditEntry.id)))


def _rename(person: Person, name: str) -> tuple[str, str, str, object]:
    return ("user", person.key, "display_name", name)


async def test_an_edit_in_an_admins_name_without_her_password_is_refused(
    database: Database, settings: Settings, people: People
) -> None:
    """What a compromised station holds — her hash, its own account — signs nothing."""
    disable = ("user", people.olga.key, "is_active", False)
    ada = await _user(database, people.ada)
    for guess in (
        edit_keys.derive("not her password", people.ada.id),
        edit_keys.derive(ada.password_hash, people.ada.id),  # the hash is not the password
        edit_keys.derive(PASSWORD, people.olga.id),  # a key, but another user's
        people.olga.edit_key(),
    ):
        answer = await _send(database, settings, _by(people.ada, disable, key=guess))
        assert answer == Answer(answer.change_id, False, "not signed with ada's current password")
    assert (await _user(database, people.olga)).is_active
    refusals = await _refusals(database)
    assert len(refusals) == 4
    assert refusals[0].actor == "ada@press-1" and refusals[0].after is not None
    assert refusals[0].after["reason"] == "not signed with ada's current password"
    # Her own station, which knows her password, is believed.
    assert (await _send(database, settings, _by(people.ada, disable))).accepted
    assert not (await _user(database, people.olga)).is_active


async def test_a_tampered_edit_fails_its_proof(
    database: Database, settings: Settings, people: People
) -> None:
    signed = _by(people.olga, _rename(people.olga, "Olga"))
    forged = edit(
        people.ada.id,
        "ada",
        signed.changes[0].stamp,
        ("user", people.olga.key, "is_active", False),
        key=people.olga.edit_key(),
    )
    answer = await _send(database, settings, replace(forged, proof=signed.proof))
    assert not answer.accepted and "ada's current password" in answer.reason
    assert (await _user(database, people.olga)).is_active


async def test_no_key_on_record_is_refused_until_a_web_sign_in_derives_it(
    database: Database, settings: Settings, people: People, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with database.session() as session:
        olga = await session.get(User, people.olga.id)
        assert olga is not None
        users.store_edit_key(olga, None)  # as every user after the migration
    sent = _by(people.olga, _rename(people.olga, "Olga"))
    answer = await _send(database, settings, sent)
    assert not answer.accepted
    assert answer.reason == "no edit key on record for 'olga': they must sign in on the web once"
    assert len(await _refusals(database)) == 1
    derived: list[uuid.UUID] = []
    derive = edit_keys.derive

    def counted(password: str, user_id: uuid.UUID) -> bytes:
        derived.append(user_id)
        return derive(password, user_id)

    monkeypatch.setattr(edit_keys, "derive", counted)
    with pytest.raises(AuthError):
        await auth.login(database, settings=settings, username="olga", password="wrong guess")
    assert derived == []  # a failed sign-in derives nothing
    assert (await _user(database, people.olga)).edit_key is None
    await auth.login(database, settings=settings, username="olga", password=PASSWORD)
    assert derived == [people.olga.id]
    assert (await _user(database, people.olga)).edit_key == people.olga.edit_key().hex()
    again = _by(people.olga, _rename(people.olga, "Olga"))
    assert (await _send(database, settings, again)).accepted


async def test_a_web_sign_in_replaces_a_key_that_is_not_its_passwords(
    database: Database, settings: Settings, people: People
) -> None:
    async with database.session() as session:
        olga = await session.get(User, people.olga.id)
        assert olga is not None
        users.store_edit_key(olga, b"\x01" * edit_keys.KEY_BYTES)
    await auth.login(database, settings=settings, username="olga", password=PASSWORD)
    assert (await _user(database, people.olga)).edit_key == people.olga.edit_key().hex()


async def test_own_password_change_brings_the_new_key_for_the_next_edits(
    database: Database, settings: Settings, people: People
) -> None:
    """Signed with the old key (the station checked the current password), carrying the new."""
    olga = people.olga
    new_key = olga.edit_key(NEW_PASSWORD)
    change = ("user", olga.key, "password_hash", hash_password(NEW_PASSWORD))
    sent = _by(olga, change, keys={olga.id: new_key})
    assert (await _send(database, settings, sent)).accepted
    stored = await _user(database, olga)
    assert verify_password(NEW_PASSWORD, stored.password_hash)
    assert stored.edit_key == new_key.hex()
    later = await _send(database, settings, _by(olga, _rename(olga, "Olga"), key=new_key))
    assert later.accepted
    stale = await _send(database, settings, _by(olga, _rename(olga, "Old key")))
    assert not stale.accepted and "olga's current password" in stale.reason
    # The change sent again (its answer lost) was signed with the key it replaced.
    again = await _send(database, settings, sent)
    assert again == Answer(sent.change_id, True, sync_inbox.ALREADY_APPLIED)
    accepted = await _accepted(database)
    assert accepted and all(new_key.hex() not in str(a.after) for a in accepted)


async def _accepted(database: Database) -> list[AuditEntry]:
    async with database.session() as session:
        query = select(AuditEntry).where(AuditEntry.action == "sync.accepted")
        return list(await session.scalars(query))


async def test_a_password_set_on_the_web_retires_the_key_a_station_holds(
    database: Database, settings: Settings, people: People
) -> None:
    async with database.session() as session:
        await users.update_user(session, actor=ROOT, user_id=people.olga.id, password=NEW_PASSWORD)
    stale = await _send(database, settings, _by(people.olga, _rename(people.olga, "Olga")))
    assert not stale.accepted and "current password" in stale.reason
    fresh = _by(people.olga, _rename(people.olga, "Olga"), key=people.olga.edit_key(NEW_PASSWORD))
    assert (await _send(database, settings, fresh)).accepted


async def test_a_key_smuggled_for_another_user_is_refused(
    database: Database, settings: Settings, people: People
) -> None:
    """Olga signs her own edit, and slips in a key of hers as Ada's: refused whole."""
    mine = people.olga.edit_key()
    smuggled = _by(people.olga, _rename(people.olga, "Olga"), keys={people.ada.id: mine})
    answer = await _send(database, settings, smuggled)
    assert not answer.accepted and answer.reason.startswith("malformed: an edit key for a user")
    own_hash = ("user", people.olga.key, "password_hash", hash_password(NEW_PASSWORD))
    with_hash = _by(people.olga, own_hash, keys={people.olga.id: mine, people.ada.id: mine})
    assert not (await _send(database, settings, with_hash)).accepted
    assert (await _user(database, people.ada)).edit_key == people.ada.edit_key().hex()
    assert verify_password(PASSWORD, (await _user(database, people.olga)).password_hash)


async def test_an_admin_creates_a_user_with_her_key_and_without_one_there_is_none(
    database: Database, settings: Settings, people: People
) -> None:
    def new_user(username: str) -> tuple[uuid.UUID, list[tuple[str, str, str, object]]]:
        user_id = uuid.uuid4()
        fields = {"username": username, "password_hash": hash_password(PASSWORD)}
        grant = ("user_role", f"{user_id}:{VIEWER_ROLE}", "deleted", False)
        return user_id, [*(("user", str(user_id), f, v) for f, v in fields.items()), grant]

    nina, changes = new_user("nina")
    nina_key = edit_keys.derive(PASSWORD, nina)
    assert (
        await _send(database, settings, _by(people.ada, *changes, keys={nina: nina_key}))
    ).accepted
    assert (await _user(database, nina)).edit_key == nina_key.hex()
    by_nina = edit(
        nina, "nina", station_stamp(DEVICE), ("user", str(nina), "display_name", "N"), key=nina_key
    )
    assert (await _send(database, settings, by_nina)).accepted
    # A password that wins without its key leaves none: the old one signs nothing more.
    max_, changes = new_user("max")
    assert (await _send(database, settings, _by(people.ada, *changes))).accepted
    assert (await _user(database, max_)).edit_key is None


async def test_a_password_change_that_loses_brings_no_key(
    database: Database, settings: Settings, people: People
) -> None:
    at_station = station_stamp(DEVICE)
    async with database.session() as session:
        await users.update_user(session, actor=ROOT, user_id=people.olga.id, password=NEW_PASSWORD)
    lost_key = people.olga.edit_key("lost password")
    change = ("user", people.olga.key, "password_hash", hash_password("lost password"))
    late = edit(
        people.olga.id,
        "olga",
        at_station,
        change,
        key=people.olga.edit_key(NEW_PASSWORD),
        keys={people.olga.id: lost_key},
    )
    answer = await _send(database, settings, late)
    assert answer.accepted and answer.reason.startswith(sync_inbox.LATER_KEPT)
    assert (await _user(database, people.olga)).edit_key == people.olga.edit_key(NEW_PASSWORD).hex()
