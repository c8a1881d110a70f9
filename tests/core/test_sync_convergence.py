"""Sync converges, whatever the network does, and privilege stays the server's.

Hypothesis drives a server (the real inbox and change log on SQLite) and three stations
(real replica files) whose clocks are skewed by up to ±10 minutes. Edits are made on the
server and on the stations, by an Admin and by a Viewer, to plain and to privileged fields;
the station's edits reach the server any number of times, in any order, late; pages of
changes after any cursor reach the stations in any order, twice, or never until the end;
answers arrive late or twice. When everything has finally been delivered, every station
holds exactly the server's users and roles, nothing waits, and no privileged field holds a
value set by someone who, in the server's records when it arrived, was not an active Admin
at its stamp.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import edit_keys, hlc
from core.db.engine import Database
from core.db.models import SyncChange
from core.protocol.sync import Answer, ChangePage
from core.rbac import ADMIN, VIEWER, builtin_id
from core.services import devices, roles, sync_inbox, sync_log, users
from core.services.users import console_actor
from core.settings import Settings
from core.sync.capture import SERVER
from desktop.agent.replica import Replica

STATIONS = 3
SKEW_MS = 10 * 60 * 1000  # the bound: clocks up to ten minutes off either way
BACKDATE_MS = 60 * 60 * 1000  # people exist an hour before the test, so skewed edits follow
CONSOLE = console_actor("console")
ADMIN_ROLE = str(builtin_id("role", ADMIN))
NAMES = ("Ada", "Bo", "Cy")
PASSWORD = "long enough"  # root's and olga's, set on the web: their edit keys are on record


@dataclass(frozen=True)
class Person:
    """Who signs in at a station (the replica's ``Author``), with the key it derives."""

    user_id: uuid.UUID
    username: str
    edit_key: bytes | None


@dataclass
class World:
    """One example's server, stations and what is in flight between them."""

    database: Database
    settings: Settings
    stations: list[Replica]
    root: Person
    olga: Person
    answers: list[list[Answer]] = field(default_factory=lambda: [[] for _ in range(STATIONS)])

    def device(self, n: int) -> str:
        return f"st-{n}"


# --- the operations hypothesis draws ------------------------------------------------------

server_ops = st.tuples(
    st.just("server"),
    st.sampled_from(["display_name", "is_active", "admin"]),
    st.sampled_from((*NAMES, "")),
    st.booleans(),
)
station_edits = st.tuples(
    st.just("edit"),
    st.integers(0, STATIONS - 1),
    st.sampled_from(["root", "olga"]),
    st.sampled_from(
        ["olga.display_name", "olga.is_active", "olga.admin", "root.display_name", "root.is_active"]
    ),
    st.sampled_from(NAMES),
    st.booleans(),
)
deliveries = st.one_of(
    st.tuples(st.just("up"), st.integers(0, STATIONS - 1)),
    st.tuples(st.just("answers"), st.integers(0, STATIONS - 1), st.booleans()),
    st.tuples(st.just("page"), st.integers(0, STATIONS - 1), st.integers(0, 10**6)),
)
operations = st.lists(st.one_of(server_ops, station_edits, deliveries), max_size=30)


async def _server_op(world: World, what: str, name: str, flag: bool) -> None:
    async with world.database.session() as session:
        if what == "display_name":
            await users.update_user(
                session, actor=CONSOLE, user_id=world.olga.user_id, display_name=name
            )
        elif what == "is_active":
            await users.update_user(
                session, actor=CONSOLE, user_id=world.olga.user_id, is_active=flag
            )
        else:
            granted = [VIEWER, ADMIN] if flag else [VIEWER]
            await users.update_user(
                session, actor=CONSOLE, user_id=world.olga.user_id, roles=granted
            )


def _station_edit(world: World, n: int, who: str, target: str, name: str, flag: bool) -> None:
    person = world.root if who == "root" else world.olga
    owner, _, what = target.partition(".")
    user = world.root if owner == "root" else world.olga
    change: tuple[str, str, str, Any]
    if what == "admin":
        change = ("user_role", f"{user.user_id}:{ADMIN_ROLE}", "deleted", not flag)
    elif what == "is_active":
        change = ("user", str(user.user_id), "is_active", flag)
    else:
        change = ("user", str(user.user_id), "display_name", name)
    world.stations[n].record_edit(person, [change])


async def _up(world: World, n: int) -> None:
    """Everything station ``n`` holds pending reaches the server (again, maybe)."""
    for edit in world.stations[n].pending():
        async with world.database.session() as session:
            answer = await sync_inbox.receive(
                session, device_id=world.device(n), edit=edit, settings=world.settings
            )
        world.answers[n].append(answer)


async def _page(world: World, n: int, after: int) -> bool:
    """A page after cursor ``after`` reaches station ``n``; whether more pages wait."""
    async with world.database.session() as session:
        await sync_log.sequence(session)
    async with world.database.session() as session:
        page = await sync_log.page(session, device_id=world.device(n), after=after)
    station = world.stations[n]
    station.apply_page(
        ChangePage(world.device(n), page.after, page.cursor, page.head, tuple(page.changes))
    )
    return page.more


async def _deliver_everything(world: World) -> None:
    """Every edit up, every answer back, every station caught up to the head."""
    for _ in range(4):  # an answer can free an edit whose page then follows
        for n in range(STATIONS):
            await _up(world, n)
            world.stations[n].settle(world.answers[n])
            world.answers[n].clear()
        for n in range(STATIONS):
            while await _page(world, n, world.stations[n].cursor):
                pass
        if not any(station.pending() for station in world.stations):
            return


async def _server_view(world: World) -> dict[str, tuple[str, bool, tuple[str, ...]]]:
    async with world.database.session() as session:
        people = await users.list_users(session, actor=CONSOLE)
        return {
            p.username: (p.display_name, p.is_active, tuple(await users.role_names(session, p.id)))
            for p in people
        }


def _station_view(station: Replica) -> dict[str, tuple[str, bool, tuple[str, ...]]]:
    return {
        p.username: (p.display_name, p.is_active, tuple(sorted(p.roles))) for p in station.people()
    }


async def _privilege_was_an_admins(world: World) -> None:
    """Every privileged field's winning value was set on the server or by an Admin then.

    "Then" is the winning edit's stamp, in the records the server held when the edit
    arrived (log rows written before it): a revocation made offline elsewhere that reaches
    the server later does not reach back to undo an edit already accepted.
    """
    async with world.database.session() as session:
        for key, name in (
            (str(world.olga.user_id), "is_active"),
            (str(world.root.user_id), "is_active"),
            (f"{world.olga.user_id}:{ADMIN_ROLE}", "deleted"),
        ):
            entity = "user_role" if ":" in key else "user"
            winner = await _log_rows(session, entity, key, name, before_id=None, at=None)
            if not winner or winner[0].origin == SERVER:  # olga never made an Admin: no link
                continue
            won = winner[0]
            assert won.actor in ("root", "olga")
            actor = world.root if won.actor == "root" else world.olga
            then = _just_before(won.stamp)  # the records before the edit itself
            admin = f"{actor.user_id}:{ADMIN_ROLE}"
            grant = await _log_rows(session, "user_role", admin, "deleted", won.id, then)
            active = await _log_rows(session, "user", str(actor.user_id), "is_active", won.id, then)
            assert grant and grant[0].value is False, f"{won} set by a non-Admin"
            assert active and active[0].value is True, f"{won} set by a disabled user"


async def _log_rows(
    session: AsyncSession, entity: str, key: str, name: str, before_id: int | None, at: str | None
) -> list[Any]:
    """The field's latest log row at or before stamp ``at``, among rows written before one."""
    query = select(SyncChange).where(
        SyncChange.entity == entity, SyncChange.key == key, SyncChange.field == name
    )
    if before_id is not None:
        query = query.where(SyncChange.id < before_id)
    if at is not None:
        query = query.where(SyncChange.stamp <= at)
    return list((await session.scalars(query.order_by(SyncChange.stamp.desc()).limit(1))).all())


def _just_before(stamp: str) -> str:
    """A stamp after every earlier one (but those of the same tick from another node)."""
    at = hlc.Stamp.parse(stamp)
    if at.counter:
        return str(hlc.Stamp(at.wall_ms, at.counter - 1, "~"))  # "~" sorts after every node id
    return str(hlc.Stamp(at.wall_ms - 1, 10**hlc.COUNTER_DIGITS - 1, "~"))


async def _world(template: Path, root: Path, skews: list[int]) -> World:
    shutil.copy(template, root / "server.db")
    settings = Settings(database_url=f"sqlite:///{root / 'server.db'}", mqtt_url="")
    database = Database(settings.async_database_url)
    async with database.session() as session:
        await roles.ensure_builtins(session)
        made = {}
        for username, granted in (("root", [ADMIN]), ("olga", [VIEWER])):
            user = await users.create_user(
                session, actor=CONSOLE, username=username, password=PASSWORD, roles=granted
            )
            made[username] = Person(user.id, username, edit_keys.derive(PASSWORD, user.id))
        for n in range(STATIONS):
            await devices.create_device(session, actor=CONSOLE, device_id=f"st-{n}")
    stations = [
        Replica(root / f"st-{n}.sqlite", device_id=f"st-{n}", wall=_skewed(skews[n]))
        for n in range(STATIONS)
    ]
    world = World(database, settings, stations, made["root"], made["olga"])
    for n in range(STATIONS):
        while await _page(world, n, stations[n].cursor):
            pass
    return world


def _skewed(offset_ms: int) -> Callable[[], int]:
    return lambda: time.time_ns() // 1_000_000 + offset_ms


async def _run(template: Path, skews: list[int], steps: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        backdated = hlc.Clock("server", lambda: time.time_ns() // 1_000_000 - BACKDATE_MS)
        real = hlc._process_clock
        hlc._process_clock = backdated
        try:
            world = await _world(template, Path(scratch), skews)
        finally:
            hlc._process_clock = real
        try:
            for step in steps:
                await _step(world, step)
            await _deliver_everything(world)
            server = await _server_view(world)
            for station in world.stations:
                assert station.pending() == []
                assert _station_view(station) == server, station.device_id
            await _privilege_was_an_admins(world)
        finally:
            for station in world.stations:
                station.close()
            await world.database.close()


async def _step(world: World, step: tuple[Any, ...]) -> None:
    kind = step[0]
    if kind == "server":
        await _server_op(world, *step[1:])
    elif kind == "edit":
        _station_edit(world, *step[1:])
    elif kind == "up":
        await _up(world, step[1])
    elif kind == "answers":
        n, keep = step[1], step[2]
        world.stations[n].settle(world.answers[n])
        if not keep:  # kept ones are delivered again later: a duplicate
            world.answers[n].clear()
    else:
        n, after = step[1], step[2]
        async with world.database.session() as session:
            head = await sync_log.head_cursor(session)
        await _page(world, n, after % (head + 1))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    skews=st.lists(st.integers(-SKEW_MS, SKEW_MS), min_size=STATIONS, max_size=STATIONS),
    steps=operations,
)
def test_any_delivery_converges_and_privilege_stays_with_admins(
    sqlite_template: Path, skews: list[int], steps: list[tuple[Any, ...]]
) -> None:
    note(f"skews {skews}, steps {steps}")
    asyncio.run(_run(sqlite_template, skews, steps))
