"""Users and roles sync between the server and a real station, both ways, over a real broker.

Against a real Mosquitto, the server's backbone and the database: what an admin changes
while a station is away reaches it in pages when it comes back, and its sign-in follows;
an operator's edit at the station reaches the server; a field edited on both sides ends
the same on both, the loser kept in the conflict log; a privilege change the server does
not accept is reverted at the station and audited; a forged edit or page changes nothing.
"""

from __future__ import annotations

import asyncio
import io
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import aiomqtt
import pytest
from sqlalchemy import select

from core import cli, edit_keys
from core.db.engine import Database
from core.db.models import AuditEntry, SyncChange, SyncConflict, User
from core.hlc import Stamp
from core.mqtt.endpoint import Endpoint
from core.protocol import topics
from core.protocol.signing import generate_signing_key
from core.protocol.sync import ChangePage, Edit, FieldChange, Up
from core.rbac import ADMIN, VIEWER
from core.services import devices, sync_log, users
from core.settings import Settings
from desktop.agent import local_users
from desktop.agent.agent import Agent, AgentConfig
from desktop.agent.sign_in import Person, sign_in
from desktop.agent.sources import Simulated
from tests.desktop.commanded import running
from tests.mqtt.broker import DEVICES, RunningBroker, eventually
from tests.mqtt.server import running_backbone
from webui.backbone.server import Backbone

DEVICE = "press-07"
OTHER = "lathe-1"
ROOT = users.console_actor("root")  # an admin at the server's console
PASSWORD = "correct horse battery"
# Field changes a page holds in these tests: the built-in roles and permissions alone take
# several pages, so a station catching up pulls page after page.
PAGE = 8
pytestmark = pytest.mark.production_database


@pytest.fixture
async def backbone(
    settings: Settings, database: Database, mosquitto: RunningBroker
) -> AsyncIterator[Backbone]:
    async with database.session() as session:
        await devices.create_device(session, actor=ROOT, device_id=DEVICE)
        await devices.create_device(session, actor=ROOT, device_id=OTHER)
        # There is always an active Admin: she lets the tests disable and demote others.
        await users.create_user(
            session, actor=ROOT, username="ada", password=PASSWORD, roles=[ADMIN]
        )
    async with running_backbone(settings, database, mosquitto) as backbone:
        backbone.sync.page_limit = PAGE
        yield backbone


def _agent(broker: RunningBroker, data_dir: Path, backbone: Backbone) -> Agent:
    endpoint = Endpoint("127.0.0.1", broker.port, username=DEVICE, password=DEVICES[DEVICE])
    keys = (backbone.signing_key.public_key(),)
    config = AgentConfig(DEVICE, endpoint, data_dir, heartbeat_s=30, server_keys=keys)
    return Agent(config, [Simulated(seed=3)])


async def _create(database: Database, username: str, roles: list[str]) -> uuid.UUID:
    async with database.session() as session:
        user = await users.create_user(
            session, actor=ROOT, username=username, password=PASSWORD, roles=roles
        )
        return user.id


async def _update(database: Database, user_id: uuid.UUID, **changes: object) -> None:
    async with database.session() as session:
        await users.update_user(session, actor=ROOT, user_id=user_id, **changes)  # type: ignore[arg-type]


async def _user(database: Database, user_id: uuid.UUID) -> User:
    async with database.session() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user


async def _until(check: Callable[[], Awaitable[bool]], within: float = 10.0) -> None:
    """Wait until the async ``check()`` holds; fail the test after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 (a database read has no event to wait on)
            await asyncio.sleep(0.02)


async def _head(database: Database) -> int:
    async with database.session() as session:
        return await sync_log.sequence(session)


async def _synced(agent: Agent, database: Database) -> None:
    """Wait until the station holds every change the server has logged."""
    head = await _head(database)
    await eventually(lambda: agent.replica.cursor >= head)


async def _signed_in(agent: Agent, username: str) -> Person:
    return await asyncio.to_thread(
        sign_in, agent.replica, username, PASSWORD, max_failures=5, lock_seconds=1
    )


def _login(
    data_dir: Path,
    username: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[int, str]:
    """``precisionpulse station login``: its exit code and what it printed."""
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n"))
    argv = ["station", "login", "--device", DEVICE, "--data-dir", str(data_dir)]
    code = cli.main([*argv, "--username", username, "--password-stdin"])
    out, err = capsys.readouterr()
    return code, out + err


async def test_a_user_made_then_disabled_while_the_station_was_away_signs_in_then_is_refused(
    backbone: Backbone,
    database: Database,
    mosquitto: RunningBroker,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    olga = await _create(database, "olga", [VIEWER])
    async with running(_agent(mosquitto, tmp_path, backbone)) as agent:
        await _synced(agent, database)
        assert agent.sync.pages >= 3  # page after page, PAGE changes each
        code, out = await asyncio.to_thread(_login, tmp_path, "olga", capsys, monkeypatch)
        assert code == 0, out
        assert VIEWER in out and "telemetry:read" in out
    await _update(database, olga, is_active=False)  # while the station is stopped
    async with running(_agent(mosquitto, tmp_path, backbone)) as agent:
        await _synced(agent, database)
        record = agent.replica.find("olga")
        assert record is not None and not record.is_active
        code, out = await asyncio.to_thread(_login, tmp_path, "olga", capsys, monkeypatch)
    assert code == 1
    assert "disabled" in out


async def test_an_operators_own_display_name_edit_reaches_the_server(
    backbone: Backbone, database: Database, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    olga = await _create(database, "olga", [VIEWER])
    async with running(_agent(mosquitto, tmp_path, backbone)) as agent:
        await _synced(agent, database)
        person = await _signed_in(agent, "olga")
        await asyncio.to_thread(local_users.edit_profile, agent.replica, person, "Olga Petrova")
        agent.sync.kick()
        await _until(lambda: _display_name_is(database, olga, "Olga Petrova"))
        await eventually(lambda: agent.replica.status().pending == 0)
        record = agent.replica.find("olga")
        assert record is not None and record.display_name == "Olga Petrova"


async def test_a_password_changed_at_the_station_signs_the_operators_next_edits(
    backbone: Backbone, database: Database, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    """The change is signed with the old password's key and carries the new one's; the
    server keeps it, and believes the next edit only under it."""
    olga = await _create(database, "olga", [VIEWER])
    async with running(_agent(mosquitto, tmp_path, backbone)) as agent:
        await _synced(agent, database)
        person = await _signed_in(agent, "olga")
        changed = await asyncio.to_thread(
            local_users.change_own_password, agent.replica, person, PASSWORD, "a new password"
        )
        rekeyed = replace(person, edit_key=bytes.fromhex(changed.keys[olga]))  # as the window
        await asyncio.to_thread(local_users.edit_profile, agent.replica, rekeyed, "Olga N.")
        stale = await asyncio.to_thread(local_users.edit_profile, agent.replica, person, "Old")
        agent.sync.kick()
        await _until(lambda: _display_name_is(database, olga, "Olga N."))
        await eventually(lambda: any(e.kind == "sync" for e in agent.state.events))
        assert agent.replica.status().pending == 0
        refusals = [e.text for e in agent.state.events if e.kind == "sync"]
        assert len(refusals) == 1 and "current password" in refusals[0], refusals
    user = await _user(database, olga)
    assert user.edit_key == edit_keys.derive("a new password", olga).hex()
    async with database.session() as session:
        audited = await session.scalars(
            select(AuditEntry).where(AuditEntry.action == "sync.refused")
        )
        assert [e.after["change_id"] for e in audited if e.after] == [str(stale.change_id)]


async def _display_name_is(database: Database, user_id: uuid.UUID, name: str) -> bool:
    return (await _user(database, user_id)).display_name == name


async def test_one_field_edited_on_both_sides_ends_the_same_with_the_loser_kept(
    backbone: Backbone, database: Database, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    olga = await _create(database, "olga", [VIEWER])
    async with running(_agent(mosquitto, tmp_path, backbone)) as agent:
        await _synced(agent, database)
    # Offline, the station's operator renames herself; then an admin renames her on the web.
    offline = _agent(mosquitto, tmp_path, backbone)
    try:
        person = await _signed_in(offline, "olga")
        local_users.edit_profile(offline.replica, person, "Olga at the press")
    finally:
        offline.close()
    await _update(database, olga, display_name="Olga Petrova")
    async with running(_agent(mosquitto, tmp_path, backbone)) as agent:
        await eventually(lambda: agent.replica.status().pending == 0)
        await _synced(agent, database)
        record = agent.replica.find("olga")
        assert record is not None and record.display_name == "Olga Petrova"
    assert (await _user(database, olga)).display_name == "Olga Petrova"
    async with database.session() as session:
        lost = list(await session.scalars(select(SyncConflict)))
    assert [(c.field, c.kept_value, c.lost_value) for c in lost] == [
        ("display_name", "Olga Petrova", "Olga at the press")
    ]
    assert lost[0].device_id == DEVICE and lost[0].lost_actor == "olga"


async def test_a_privilege_change_by_someone_no_longer_admin_is_refused_reverted_and_audited(
    backbone: Backbone, database: Database, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    bob = await _create(database, "bob", [ADMIN])
    olga = await _create(database, "olga", [VIEWER])
    async with running(_agent(mosquitto, tmp_path, backbone)) as agent:
        await _synced(agent, database)
    await _update(database, bob, roles=[VIEWER])  # demoted while the station is away
    offline = _agent(mosquitto, tmp_path, backbone)
    try:  # the station still holds bob as an Admin: it lets him disable olga
        edit = local_users.set_active(
            offline.replica, await _signed_in(offline, "bob"), olga, False
        )
        record = offline.replica.find("olga")
        assert record is not None and not record.is_active
    finally:
        offline.close()
    async with running(_agent(mosquitto, tmp_path, backbone)) as agent:
        await eventually(lambda: any(e.kind == "sync" for e in agent.state.events))
        assert agent.replica.status().pending == 0
        record = agent.replica.find("olga")
        assert record is not None and record.is_active  # reverted
        refusals = [e.text for e in agent.state.events if e.kind == "sync"]
        assert len(refusals) == 1 and "bob" in refusals[0] and "enabled flag" in refusals[0]
    assert (await _user(database, olga)).is_active
    async with database.session() as session:
        audited = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.actor.like("bob@%")))
        )
    assert [(e.actor, e.action) for e in audited] == [(f"bob@{DEVICE}", "sync.refused")]
    assert audited[0].after is not None
    assert audited[0].after["change_id"] == str(edit.change_id)


async def test_a_restarted_server_brings_a_connected_station_what_changed_meanwhile(
    settings: Settings, database: Database, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    """The station stays connected to the broker; the server's birth makes it pull."""
    async with database.session() as session:
        await devices.create_device(session, actor=ROOT, device_id=DEVICE)
    agent: Agent | None = None
    try:
        async with running_backbone(settings, database, mosquitto) as backbone:
            agent = _agent(mosquitto, tmp_path, backbone)
            await agent.start()
            await agent.supervisor.wait_connected()
            await _synced(agent, database)
        await _create(database, "late", [VIEWER])  # while no server runs (the CLI, say)
        async with running_backbone(settings, database, mosquitto):
            await eventually(lambda: agent is not None and agent.replica.find("late") is not None)
        assert agent.supervisor.connects == 1
    finally:
        if agent is not None:
            await agent.stop()


async def test_forged_edits_and_pages_change_nothing(
    backbone: Backbone, database: Database, mosquitto: RunningBroker, tmp_path: Path
) -> None:
    olga = await _create(database, "olga", [VIEWER])
    async with running(_agent(mosquitto, tmp_path, backbone)) as agent:
        await _synced(agent, database)
        person = await _signed_in(agent, "olga")
        forged = _rename(person, "Mallory")
        # Another station's account writes on this one's topic (the broker's ACL stops it),
        # then on its own topic naming this station (the server drops it).
        async with _client(mosquitto, OTHER, DEVICES[OTHER]) as other:
            await other.publish(topics.sync_up(DEVICE), Up(DEVICE, (forged,)).encode(), qos=1)
            await other.publish(topics.sync_up(OTHER), Up(DEVICE, (forged,)).encode(), qos=1)
        await eventually(lambda: backbone.router.dropped["device_mismatch"] == 1)
        # A page signed with a key the station does not trust is dropped there.
        stranger = generate_signing_key()
        change = FieldChange("user", str(olga), "display_name", "Mallory", "9" * 15 + ".0.x")
        page = ChangePage(DEVICE, agent.replica.cursor, agent.replica.cursor, 0, (change,))
        assert backbone.supervisor is not None
        await backbone.supervisor.publish(topics.sync_down(DEVICE), page.encode(stranger), qos=1)
        await eventually(lambda: agent.supervisor.router.dropped["malformed"] == 1)
        # The station's own edit, sent after the forged one, is the first the server has.
        await asyncio.to_thread(local_users.edit_profile, agent.replica, person, "Olga P.")
        agent.sync.kick()
        await _until(lambda: _display_name_is(database, olga, "Olga P."))
        record = agent.replica.find("olga")
        assert record is not None and record.display_name == "Olga P."
    async with database.session() as session:
        values = await session.scalars(
            select(SyncChange.value).where(SyncChange.field == "display_name")
        )
        assert "Mallory" not in list(values)


def _rename(person: Person, name: str) -> Edit:
    """A rename in ``person``'s name, signed with their own key: only the wire stops it."""
    stamp = str(Stamp(int(time.time() * 1000), 0, DEVICE))
    change = FieldChange("user", str(person.user_id), "display_name", name, stamp)
    unsigned = Edit(uuid.uuid4(), person.user_id, person.username, (change,), "")
    assert person.edit_key is not None
    return replace(unsigned, proof=edit_keys.prove(person.edit_key, unsigned))


def _client(broker: RunningBroker, username: str, password: str) -> aiomqtt.Client:
    return aiomqtt.Client(
        "127.0.0.1",
        broker.port,
        username=username,
        password=password,
        identifier=username,
        socket_options=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),),
    )
