"""The server's word on a station's edits: who may change what, at the edit's time; merged
field by field, higher stamp wins, the loser kept; refused edits change nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from typing import Any

import pytest
from sqlalchemy import func, select

from core import edit_keys, events, hlc
from core.db.engine import Database
from core.db.models import AuditEntry, SyncChange, SyncConflict, User
from core.hlc import Stamp
from core.passwords import hash_password, verify_password
from core.protocol.sync import Answer, Edit
from core.rbac import ADMIN, VIEWER, builtin_id
from core.services import (
    config_history,
    device_configs,
    devices,
    roles,
    sessions,
    sync_inbox,
    users,
)
from core.services.users import console_actor
from core.settings import Settings
from tests.core.station_edits import edit, station_stamp

DEVICE, OTHER = "press-1", "press-2"
ROOT = console_actor("root")
MINUTE_MS = 60_000
ADMIN_ROLE = str(builtin_id("role", ADMIN))
VIEWER_ROLE = str(builtin_id("role", VIEWER))


PASSWORD = "long enough"  # everyone's, set on the web: their edit keys are on record


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    name: str

    @property
    def key(self) -> str:
        return str(self.id)

    @property
    def edit_key(self) -> bytes:
        """What their station derived when they signed in there."""
        return edit_keys.derive(PASSWORD, self.id)


@dataclass(frozen=True)
class People:
    root: Person  # Admin
    ada: Person  # Admin
    olga: Person  # Viewer
    mia: Person  # Manager: users:manage
    ivan: Person  # Operator: config:write


@pytest.fixture(autouse=True)
def _own_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh server clock: a stamp observed here never pushes other tests' clocks ahead."""
    monkeypatch.setattr(hlc, "_process_clock", hlc.Clock("server"))


@pytest.fixture
async def people(database: Database) -> People:
    async with database.session() as session:
        for name, permission in (("Manager", "users:manage"), ("Operator", "config:write")):
            await roles.create_role(
                session, actor=ROOT, name=name, description="", permissions=[permission]
            )
        made = {}
        for name, role in (
            ("root", ADMIN),
            ("ada", ADMIN),
            ("olga", VIEWER),
            ("mia", "Manager"),
            ("ivan", "Operator"),
        ):
            user = await users.create_user(
                session, actor=ROOT, username=name, password=PASSWORD, roles=[role]
            )
            made[name] = Person(user.id, name)
        for device_id in (DEVICE, OTHER):
            await devices.create_device(session, actor=ROOT, device_id=device_id)
    return People(**made)


async def _send(
    database: Database, settings: Settings, sent: Edit, *, device_id: str = DEVICE
) -> Answer:
    async with database.session() as session:
        return await sync_inbox.receive(session, device_id=device_id, edit=sent, settings=settings)


def _by(
    person: Person,
    *changes: tuple[str, str, str, Any],
    stamp: str | None = None,
    key: bytes | None = None,
    keys: dict[uuid.UUID, bytes] | None = None,
) -> Edit:
    """An edit by ``person``, signed with their edit key (or ``key``)."""
    signing = person.edit_key if key is None else key
    return edit(
        person.id, person.name, stamp or station_stamp(DEVICE), *changes, key=signing, keys=keys
    )


async def _user(database: Database, person: Person) -> User:
    async with database.session() as session:
        user = await session.get(User, person.id)
    assert user is not None
    return user


async def _audits(database: Database, action: str) -> list[AuditEntry]:
    async with database.session() as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        return list(await session.scalars(query))


async def _logged(database: Database, change_id: uuid.UUID) -> list[SyncChange]:
    async with database.session() as session:
        query = select(SyncChange).where(SyncChange.change_id == change_id)
        return list(await session.scalars(query.order_by(SyncChange.id)))


async def _conflicts(database: Database) -> list[SyncConflict]:
    async with database.session() as session:
        return list(await session.scalars(select(SyncConflict).order_by(SyncConflict.id)))


async def test_own_display_name_is_applied_logged_announced_and_audited(
    database: Database, settings: Settings, people: People
) -> None:
    heard: list[events.SyncChanged] = []

    async def hear(event: events.SyncChanged) -> None:
        heard.append(event)

    database.events.subscribe(events.SyncChanged, hear)
    sent = _by(people.olga, ("user", people.olga.key, "display_name", "Olga K."))
    answer = await _send(database, settings, sent)
    assert answer == Answer(sent.change_id, True, sync_inbox.APPLIED)
    user = await _user(database, people.olga)
    assert user.display_name == "Olga K." and user.updated_at == sent.changes[0].stamp
    [logged] = await _logged(database, sent.change_id)
    assert (logged.value, logged.origin, logged.actor) == ("Olga K.", DEVICE, "olga")
    assert heard
    [entry] = await _audits(database, "sync.accepted")
    assert entry.actor == "olga@press-1"
    assert entry.after is not None and "Olga K." in entry.after["changes"].values()


async def test_another_users_display_name_needs_users_manage_at_the_time(
    database: Database, settings: Settings, people: People
) -> None:
    refused = _by(people.olga, ("user", people.ada.key, "display_name", "Boss"))
    answer = await _send(database, settings, refused)
    assert not answer.accepted and "users:manage" in answer.reason
    assert (await _user(database, people.ada)).display_name == ""
    [entry] = await _audits(database, "sync.refused")
    assert entry.actor == "olga@press-1" and entry.after is not None
    assert entry.after["fields"] == ["user.display_name"]
    assert entry.after["reason"] == answer.reason
    allowed = _by(people.mia, ("user", people.ada.key, "display_name", "Ada L."))
    assert (await _send(database, settings, allowed)).accepted
    assert (await _user(database, people.ada)).display_name == "Ada L."


@pytest.mark.parametrize(
    ("field", "value"), [("is_active", False), ("deleted", True), ("username", "olga2")]
)
async def test_a_non_admins_privileged_change_is_refused(
    database: Database, settings: Settings, people: People, field: str, value: Any
) -> None:
    for target in (people.olga, people.ivan):  # their own account, and another's
        answer = await _send(
            database, settings, _by(people.olga, ("user", target.key, field, value))
        )
        assert not answer.accepted and "only an Admin" in answer.reason
    user = await _user(database, people.ivan)
    assert (user.is_active, user.deleted, user.username) == (True, False, "ivan")
    assert len(await _audits(database, "sync.refused")) == 2


async def test_own_password_change_is_accepted_and_ends_web_sign_ins(
    database: Database, settings: Settings, people: People
) -> None:
    async with database.session() as session:
        web = await sessions.open_session(session, user_id=people.olga.id)
    new_hash = hash_password("a brand new one")
    sent = _by(people.olga, ("user", people.olga.key, "password_hash", new_hash))
    assert (await _send(database, settings, sent)).accepted
    assert verify_password("a brand new one", (await _user(database, people.olga)).password_hash)
    async with database.session() as session:
        ended = await sessions.get(session, web.id)
    assert ended is not None and ended.revoked_reason == "password_changed"
    [entry] = await _audits(database, "sync.accepted")
    assert entry.after is not None and new_hash not in str(entry.after)
    assert "password changed" in entry.after["changes"].values()
    others = _by(people.olga, ("user", people.ivan.key, "password_hash", new_hash))
    assert not (await _send(database, settings, others)).accepted


async def test_a_demoted_admins_edit_counts_only_if_made_before_the_demotion(
    database: Database, settings: Settings, people: People
) -> None:
    before = station_stamp(DEVICE)
    async with database.session() as session:
        await users.update_user(session, actor=ROOT, user_id=people.ada.id, roles=[VIEWER])
    after = station_stamp(DEVICE)
    disable = ("user", people.olga.key, "is_active", False)
    late = await _send(database, settings, _by(people.ada, disable, stamp=after))
    assert not late.accepted and "only an Admin" in late.reason
    assert (await _user(database, people.olga)).is_active
    early = await _send(database, settings, _by(people.ada, disable, stamp=before))
    assert early.accepted
    assert not (await _user(database, people.olga)).is_active


async def test_a_station_edit_older_than_the_servers_loses_and_is_kept_as_a_conflict(
    database: Database, settings: Settings, people: People
) -> None:
    at_station = station_stamp(DEVICE)
    async with database.session() as session:
        await users.update_user(session, actor=ROOT, user_id=people.olga.id, display_name="web")
    sent = _by(people.olga, ("user", people.olga.key, "display_name", "station"), stamp=at_station)
    answer = await _send(database, settings, sent)
    assert answer.accepted and answer.reason == f"{sync_inbox.LATER_KEPT} user.display_name"
    assert (await _user(database, people.olga)).display_name == "web"
    [conflict] = await _conflicts(database)
    assert (conflict.kept_value, conflict.lost_value) == ("web", "station")
    assert (conflict.lost_origin, conflict.lost_actor, conflict.device_id) == (
        DEVICE,
        "olga",
        DEVICE,
    )


async def test_a_later_station_edit_wins_and_the_overwritten_value_is_kept(
    database: Database, settings: Settings, people: People
) -> None:
    async with database.session() as session:
        await users.update_user(session, actor=ROOT, user_id=people.olga.id, display_name="web")
    sent = _by(people.olga, ("user", people.olga.key, "display_name", "station"))
    assert (await _send(database, settings, sent)).reason == sync_inbox.APPLIED
    assert (await _user(database, people.olga)).display_name == "station"
    [conflict] = await _conflicts(database)
    assert (conflict.kept_value, conflict.lost_value, conflict.lost_origin) == (
        "station",
        "web",
        "server",
    )


async def test_a_stamp_far_ahead_is_clamped_and_audited_a_near_one_kept(
    database: Database, settings: Settings, people: People
) -> None:
    refused_at = station_stamp(DEVICE, ahead_ms=14 * MINUTE_MS)  # within the bound
    refused = _by(people.olga, ("user", people.ada.key, "is_active", False), stamp=refused_at)
    assert not (await _send(database, settings, refused)).accepted
    assert hlc.now() < refused_at  # a refused edit moves no clock
    far = station_stamp(DEVICE, ahead_ms=20 * MINUTE_MS)
    sent = _by(people.olga, ("user", people.olga.key, "display_name", "far"), stamp=far)
    assert (await _send(database, settings, sent)).accepted
    [logged] = await _logged(database, sent.change_id)
    assert logged.stamp < far and Stamp.parse(logged.stamp).node == "server"
    [clamped] = await _audits(database, "sync.clock_clamped")
    assert clamped.target_id == DEVICE and clamped.after is not None
    assert (clamped.after["person"], clamped.after["given"]) == ("olga", far)
    near = station_stamp(DEVICE, ahead_ms=10 * MINUTE_MS)
    kept = _by(people.olga, ("user", people.olga.key, "display_name", "near"), stamp=near)
    assert (await _send(database, settings, kept)).accepted
    assert [c.stamp for c in await _logged(database, kept.change_id)] == [near]
    assert hlc.now() > near  # the server's clock moved past it
    assert len(await _audits(database, "sync.clock_clamped")) == 1  # the far one alone


async def test_an_edit_sent_again_is_already_applied(
    database: Database, settings: Settings, people: People
) -> None:
    won = _by(people.olga, ("user", people.olga.key, "display_name", "once"))
    lost_at = station_stamp(DEVICE)
    async with database.session() as session:
        await users.update_user(session, actor=ROOT, user_id=people.ivan.id, display_name="web")
    lost = _by(people.mia, ("user", people.ivan.key, "display_name", "late"), stamp=lost_at)
    for sent in (won, lost):
        assert (await _send(database, settings, sent)).accepted
        conflicts = len(await _conflicts(database))
        again = await _send(database, settings, sent)
        assert again == Answer(sent.change_id, True, sync_inbox.ALREADY_APPLIED)
        assert len(await _conflicts(database)) == conflicts  # kept once, not again
    assert len(await _audits(database, "sync.accepted")) == 2
    assert len(await _logged(database, won.change_id)) == 1
    # The server's "" that "once" overwrote, and "late", which lost to "web".
    assert [c.lost_value for c in await _conflicts(database)] == ["", "late"]


async def test_a_config_override_becomes_a_new_signed_version(
    database: Database, settings: Settings, people: People
) -> None:
    heard: list[events.DesiredConfigChanged] = []

    async def hear(event: events.DesiredConfigChanged) -> None:
        heard.append(event)

    database.events.subscribe(events.DesiredConfigChanged, hear)
    sent = _by(people.ivan, ("device_config", DEVICE, "desired.interval_s", 2.5))
    assert (await _send(database, settings, sent)).accepted
    async with database.session() as session:
        desired = await device_configs.desired(session, device_id=DEVICE)
        version = await config_history.get(session, device_id=DEVICE, version=1)
    assert desired is not None and desired.settings == {"interval_s": 2.5}
    assert version is not None and version.source == "station"
    assert (version.changed_by, version.note) == ("ivan@press-1", "ivan@press-1")
    assert heard == [events.DesiredConfigChanged(DEVICE)]
    [logged] = await _logged(database, sent.change_id)
    assert logged.scope == DEVICE  # only this station receives its configuration


@pytest.mark.parametrize(
    ("who", "key", "field", "value", "why"),
    [
        ("ivan", OTHER, "desired.interval_s", 2.5, "only its own"),  # forged for another
        ("olga", DEVICE, "desired.interval_s", 2.5, "config:write"),
        ("ivan", DEVICE, "desired.heartbeat_s", 5, "may not override"),
        ("ivan", DEVICE, "desired.interval_s", 0, "interval_s must be"),
        ("ivan", DEVICE, "desired_version", 9, "server's"),
    ],
)
async def test_a_config_override_out_of_bounds_is_refused(
    database: Database,
    settings: Settings,
    people: People,
    who: str,
    key: str,
    field: str,
    value: Any,
    why: str,
) -> None:
    person = getattr(people, who)
    answer = await _send(database, settings, _by(person, ("device_config", key, field, value)))
    assert not answer.accepted and why in answer.reason
    async with database.session() as session:
        for device_id in (DEVICE, OTHER):
            assert await device_configs.desired(session, device_id=device_id) is None


async def test_the_policy_setting_widens_what_stations_override(
    database: Database, settings: Settings, people: People
) -> None:
    wider = settings.model_copy(update={"station_config_overrides": ("interval_s", "heartbeat_s")})
    sent = _by(people.ivan, ("device_config", DEVICE, "desired.heartbeat_s", 5))
    assert (await _send(database, wider, sent)).accepted


async def test_an_edit_stamped_by_another_clock_is_refused(
    database: Database, settings: Settings, people: People
) -> None:
    forged = edit(
        people.ivan.id,
        "ivan",
        station_stamp(OTHER),
        ("device_config", OTHER, "desired.interval_s", 2.5),
        key=people.ivan.edit_key,
    )
    answer = await _send(database, settings, forged, device_id=DEVICE)
    assert not answer.accepted and "clock" in answer.reason


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (("widget", "x", "name", "y"), "no such kind"),
        (("permission", str(builtin_id("permission", "audit:read")), "name", "x"), "never"),
        (("user", "{olga}", "favourite_colour", "red"), "no field"),
        (("user", "not-a-uuid", "display_name", "x"), "bad user key"),
        (("user", "{OLGA}", "display_name", "x"), "lower case"),
        (("user", "{olga}", "is_active", "yes"), "true or false"),
        (("user", "{olga}", "password_hash", "plain text"), "argon2"),
        (("user", "{olga}", "display_name", "x" * 129), "at most 128"),
        (("user", "{olga}", "username", "no spaces allowed"), "username"),
        (("role", str(uuid.uuid4()), "builtin", True), "built-in"),
        (("role", str(uuid.uuid4()), "name", " padded "), "spaces"),
    ],
)
async def test_a_malformed_edit_changes_nothing(
    database: Database,
    settings: Settings,
    people: People,
    change: tuple[str, str, str, Any],
    why: str,
) -> None:
    entity, key, field, value = change
    key = key.format(olga=people.olga.key, OLGA=people.olga.key.upper())
    good = ("user", people.ivan.key, "display_name", "fine")  # refused with it: all or nothing
    sent = _by(people.ada, good, (entity, key, field, value))
    answer = await _send(database, settings, sent)
    assert not answer.accepted and why in answer.reason
    assert (await _user(database, people.ivan)).display_name == ""
    assert (await _user(database, people.olga)).display_name == ""
    assert await _logged(database, sent.change_id) == []
    assert len(await _audits(database, "sync.refused")) == 1


async def test_an_edit_of_many_stamps_is_refused(
    database: Database, settings: Settings, people: People
) -> None:
    one, two = (
        _by(people.olga, ("user", people.olga.key, "display_name", "a")),
        _by(people.olga, ("user", people.olga.key, "username", "b")),
    )
    unsigned = Edit(uuid.uuid4(), people.olga.id, "olga", one.changes + two.changes, "")
    mixed = replace(unsigned, proof=edit_keys.prove(people.olga.edit_key, unsigned))
    answer = await _send(database, settings, mixed)
    assert not answer.accepted and "one stamp" in answer.reason


@pytest.mark.parametrize("who", ["nobody", "wrong name", "disabled"])
async def test_the_editor_must_be_an_active_user_under_that_name(
    database: Database, settings: Settings, people: People, who: str
) -> None:
    if who == "disabled":
        async with database.session() as session:
            await users.update_user(session, actor=ROOT, user_id=people.olga.id, is_active=False)
    user_id = uuid.uuid4() if who == "nobody" else people.olga.id
    username = "olga2" if who == "wrong name" else "olga"
    sent = edit(
        user_id,
        username,
        station_stamp(DEVICE),
        ("user", str(user_id), "display_name", "me"),
        key=people.olga.edit_key,
    )
    answer = await _send(database, settings, sent)
    assert not answer.accepted and "'olga" in answer.reason


async def test_an_admin_creates_a_user_with_a_role_at_a_station(
    database: Database, settings: Settings, people: People
) -> None:
    key = str(uuid.uuid4())
    fields = {"username": "nina", "password_hash": hash_password("long enough")}
    whole = [("user", key, f, v) for f, v in fields.items()]
    grant = ("user_role", f"{key}:{VIEWER_ROLE}", "deleted", False)
    incomplete = await _send(database, settings, _by(people.ada, whole[0], grant))
    assert not incomplete.accepted and "incomplete" in incomplete.reason
    taken = [("user", key, "username", "olga"), whole[1]]
    assert "already exists" in (await _send(database, settings, _by(people.ada, *taken))).reason
    sent = _by(people.ada, *whole, grant)
    assert (await _send(database, settings, sent)).accepted
    async with database.session() as session:
        nina = await users.find_by_username(session, "nina")
        assert nina is not None and nina.is_active
        assert await users.role_names(session, nina.id) == [VIEWER]
    logged = {(c.entity, c.field): c.value for c in await _logged(database, sent.change_id)}
    assert logged[("user", "is_active")] is True  # defaults are logged with the edit
    assert logged[("user_role", "deleted")] is False


async def test_an_admin_makes_a_role_but_built_in_roles_are_fixed(
    database: Database, settings: Settings, people: People
) -> None:
    key = str(uuid.uuid4())
    reader = str(builtin_id("permission", "reports:read"))
    made = _by(
        people.ada,
        ("role", key, "name", "Reporter"),
        ("role_permission", f"{key}:{reader}", "deleted", False),
    )
    assert (await _send(database, settings, made)).accepted
    async with database.session() as session:
        assert await roles.permissions_of(session, uuid.UUID(key)) == ["reports:read"]
    for change in (
        ("role", VIEWER_ROLE, "description", "anything"),
        ("role_permission", f"{VIEWER_ROLE}:{reader}", "deleted", False),
    ):
        answer = await _send(database, settings, _by(people.ada, change))
        assert not answer.accepted and "built-in" in answer.reason
    unknown = _by(people.ada, ("user_role", f"{people.olga.key}:{uuid.uuid4()}", "deleted", False))
    assert "no such role" in (await _send(database, settings, unknown)).reason


async def test_the_last_active_admin_stays(
    database: Database, settings: Settings, people: People
) -> None:
    async with database.session() as session:
        web = await sessions.open_session(session, user_id=people.root.id)
    demote_root = ("user_role", f"{people.root.key}:{ADMIN_ROLE}", "deleted", True)
    assert (await _send(database, settings, _by(people.ada, demote_root))).accepted
    async with database.session() as session:
        assert await users.count_active_admins(session) == 1
    for last in (
        ("user", people.ada.key, "is_active", False),
        ("user", people.ada.key, "deleted", True),
        ("user_role", f"{people.ada.key}:{ADMIN_ROLE}", "deleted", True),
    ):
        answer = await _send(database, settings, _by(people.ada, last))
        assert answer == Answer(answer.change_id, False, users.NO_ADMIN_LEFT)
    disable_root = ("user", people.root.key, "is_active", False)
    assert (await _send(database, settings, _by(people.ada, disable_root))).accepted
    async with database.session() as session:
        ended = await sessions.get(session, web.id)
        assert await users.count_active_admins(session) == 1
    assert ended is not None and ended.revoked_reason == "disabled"


async def test_only_accepted_edits_reach_the_log(
    database: Database, settings: Settings, people: People
) -> None:
    async with database.session() as session:
        before = await session.scalar(select(func.count()).select_from(SyncChange))
    await _send(database, settings, _by(people.olga, ("user", people.ada.key, "is_active", False)))
    async with database.session() as session:
        assert await session.scalar(select(func.count()).select_from(SyncChange)) == before
