"""Commands in the database: who may create what, and how a command moves (and never moves)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from core.db.engine import Database
from core.db.models import AuditEntry, Command
from core.db.types import utcnow
from core.errors import ConflictError, ForbiddenError, InvalidError, NotFoundError
from core.events import CommandChanged
from core.protocol.commands import (
    ACCEPT_LEEWAY_MS,
    MIN_RUN_S,
    NOT_RECEIVED,
    Refusal,
    Result,
    read_command,
)
from core.protocol.commands import (
    Command as SignedCommand,
)
from core.protocol.signing import generate_signing_key
from core.services import commands, config_history, device_configs, devices
from core.services.actor import Actor
from core.services.commands import answers

ADMIN = Actor(
    name="ada",
    permissions=frozenset(
        {"devices:read", "devices:write", "commands:send", "config:write", "audit:read"}
    ),
)
SENDER = Actor(name="sam", permissions=frozenset({"devices:read", "commands:send"}))
VIEWER = Actor(name="vic", permissions=frozenset({"devices:read"}))


@pytest.fixture
async def database_with_devices(database: Database) -> Database:
    async with database.session() as session:
        for device_id in ("press-07", "lathe-1", "old-1"):
            await devices.create_device(session, actor=ADMIN, device_id=device_id)
        await devices.update_device(session, actor=ADMIN, device_id="old-1", enabled=False)
    return database


async def _create(database: Database, kind: str = "Ping", **kwargs: Any) -> Command:
    kwargs.setdefault("args", {})
    kwargs.setdefault("device_id", "press-07")
    async with database.session() as session:
        return await commands.create(session, actor=kwargs.pop("actor", ADMIN), kind=kind, **kwargs)


async def _state(database: Database, command_id: uuid.UUID) -> Command:
    async with database.session() as session:
        return await commands.get(session, actor=VIEWER, command_id=command_id)


async def _audit(database: Database, prefix: str = "command.") -> list[tuple[str, str, str]]:
    """Each audit entry about commands: (action, actor, target id), oldest first."""
    async with database.session() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.action.startswith(prefix)).order_by(AuditEntry.id)
        )
        return [(row.action, row.actor, row.target_id) for row in rows]


async def _sent(database: Database, command_id: uuid.UUID) -> None:
    async with database.session() as session:
        assert await commands.attempt(session, command_id=command_id) is not None
        assert await commands.mark_sent(session, command_id=command_id)


async def _answer(
    database: Database, command_id: uuid.UUID | None, state: Any, device_id: str = "press-07"
) -> commands.Outcome:
    result = Result(device_id, str(command_id) if command_id else None, state, detail=state)
    async with database.session() as session:
        return await commands.record_result(session, result=result, device_id=device_id)


# -- creating ------------------------------------------------------------------------------


async def test_a_command_is_queued_audited_and_announced_after_its_commit(
    database_with_devices: Database,
) -> None:
    database = database_with_devices
    heard: list[CommandChanged] = []

    async def listen(event: CommandChanged) -> None:
        heard.append(event)

    database.events.subscribe(CommandChanged, listen)
    async with database.session() as session:
        command = await commands.create(
            session, actor=SENDER, device_id="press-07", kind="Ping", args={}, timeout_s=5
        )
        assert heard == []
    assert heard == [CommandChanged(command.id, "press-07", "queued")]
    stored = await _state(database, command.id)
    assert (stored.state, stored.created_by_name, stored.attempts) == ("queued", "sam", 0)
    assert stored.expires_at - stored.created_at == timedelta(seconds=5)
    assert await _audit(database) == [("command.create", "sam", str(command.id))]


@pytest.mark.parametrize(
    ("kind", "args", "timeout_s", "field"),
    [
        ("Reboot", {}, 30, "kind"),
        ("Ping", {"loud": True}, 30, "args.loud"),
        ("UpdateConfig", {}, 30, "args"),
        ("UpdateConfig", {"interval_s": -1}, 30, "args.interval_s"),
        ("UpdateConfig", {"colour": "red"}, 30, "args.colour"),
        ("UpdateConfig", {"thresholds": {"t": {"high": 10**30}}}, 30, "args.thresholds"),
        ("Ping", {}, 0, "timeout_s"),
        ("Ping", {}, 8 * 24 * 3600, "timeout_s"),
    ],
)
async def test_a_bad_command_names_its_field_and_stores_nothing(
    database_with_devices: Database, kind: str, args: dict[str, Any], timeout_s: int, field: str
) -> None:
    with pytest.raises(InvalidError) as refused:
        await _create(database_with_devices, kind, args=args, timeout_s=timeout_s)
    assert refused.value.field == field
    async with database_with_devices.session() as session:
        assert await commands.search(session, actor=VIEWER) == []
    assert await _audit(database_with_devices) == []


async def test_unknown_and_disabled_devices_are_refused(database_with_devices: Database) -> None:
    for device_id in ("nobody", "bad id\x00"):
        with pytest.raises(NotFoundError):
            await _create(database_with_devices, device_id=device_id)
    with pytest.raises(ConflictError, match="disabled"):
        await _create(database_with_devices, device_id="old-1")


async def test_sending_needs_commands_send_and_a_configuration_change_config_write(
    database_with_devices: Database,
) -> None:
    with pytest.raises(ForbiddenError):
        await _create(database_with_devices, actor=VIEWER)
    with pytest.raises(ForbiddenError):
        await _create(database_with_devices, "UpdateConfig", args={"interval_s": 2}, actor=SENDER)


# -- the station's answers -----------------------------------------------------------------


async def test_a_command_moves_through_its_states_on_the_stations_word(
    database_with_devices: Database,
) -> None:
    database = database_with_devices
    heard: list[str] = []

    async def listen(event: CommandChanged) -> None:
        heard.append(event.state)

    database.events.subscribe(CommandChanged, listen)
    command = await _create(database)
    await _sent(database, command.id)
    assert (await _state(database, command.id)).state == "sent"
    assert await _answer(database, command.id, "delivered") == "moved"
    assert (await _state(database, command.id)).state == "delivered"
    result = Result("press-07", str(command.id), "succeeded", "pong", {"uptime_s": 12})
    async with database.session() as session:
        assert await commands.record_result(session, result=result, device_id="press-07") == "moved"
    done = await _state(database, command.id)
    assert (done.state, done.detail, done.result) == ("succeeded", "pong", {"uptime_s": 12})
    assert done.sent_at and done.delivered_at and done.finished_at
    assert [a for a, _, _ in await _audit(database)] == ["command.create", "command.succeeded"]
    assert heard == ["queued", "sent", "delivered", "succeeded"]


async def test_of_two_answers_at_once_exactly_one_moves_the_command(
    database_with_devices: Database,
) -> None:
    database = database_with_devices
    command = await _create(database)
    await _sent(database, command.id)
    outcomes = await asyncio.gather(
        _answer(database, command.id, "succeeded"), _answer(database, command.id, "failed")
    )
    assert sorted(outcomes) == ["late", "moved"]
    winner = "succeeded" if outcomes[0] == "moved" else "failed"
    assert (await _state(database, command.id)).state == winner


async def test_a_terminal_state_is_never_left(database_with_devices: Database) -> None:
    database = database_with_devices
    command = await _create(database)
    await _sent(database, command.id)
    assert await _answer(database, command.id, "succeeded") == "moved"
    assert await _answer(database, command.id, "succeeded") == "unchanged"  # a duplicate
    assert await _answer(database, command.id, "delivered") == "unchanged"  # older news
    assert await _answer(database, command.id, "failed") == "late"
    async with database.session() as session:
        assert not await commands.mark_sent(session, command_id=command.id)
        assert await commands.attempt(session, command_id=command.id) is None
        assert await commands.expire_due(session, now=utcnow() + timedelta(days=1)) == []
    stored = await _state(database, command.id)
    assert (stored.state, stored.detail) == ("succeeded", "succeeded")
    assert [a for a, _, _ in await _audit(database)][-1] == "command.late_result"


async def test_no_answer_moves_a_command_never_sent(database_with_devices: Database) -> None:
    """A station cannot answer what was never published: no skipping from queued."""
    database = database_with_devices
    command = await _create(database)
    assert await _answer(database, command.id, "succeeded") == "refused"
    assert await _answer(database, command.id, "delivered") == "refused"
    assert (await _state(database, command.id)).state == "queued"


async def test_an_answer_may_beat_the_sent_mark_once_a_publish_began(
    database_with_devices: Database,
) -> None:
    database = database_with_devices
    command = await _create(database)
    async with database.session() as session:
        assert await commands.attempt(session, command_id=command.id) is not None
    assert await _answer(database, command.id, "delivered") == "moved"
    async with database.session() as session:
        assert not await commands.mark_sent(session, command_id=command.id)  # never backwards
    stored = await _state(database, command.id)
    assert (stored.state, stored.sent_at is not None) == ("delivered", True)


async def test_forged_answers_are_refused_audited_and_move_nothing(
    database_with_devices: Database,
) -> None:
    database = database_with_devices
    command = await _create(database)
    await _sent(database, command.id)
    assert await _answer(database, command.id, "succeeded", device_id="lathe-1") == "refused"
    assert await _answer(database, uuid.uuid4(), "succeeded") == "refused"
    unverified = Result("press-07", None, "rejected", "signature: bad", claimed_id="x-1")
    async with database.session() as session:
        outcome = await commands.record_result(session, result=unverified, device_id="press-07")
    assert outcome == "refused"
    assert (await _state(database, command.id)).state == "sent"
    refusals = [(a, who) for a, who, _ in await _audit(database) if a == "command.refused"]
    assert refusals == [
        ("command.refused", "device:lathe-1"),
        ("command.refused", "device:press-07"),
        ("command.refused", "device:press-07"),
    ]


# -- cancelling ----------------------------------------------------------------------------


async def test_only_a_command_no_publish_has_begun_for_can_be_canceled(
    database_with_devices: Database,
) -> None:
    database = database_with_devices
    waiting, going, sent = [await _create(database) for _ in range(3)]
    async with database.session() as session:
        await commands.attempt(session, command_id=going.id)
    await _sent(database, sent.id)
    async with database.session() as session:
        canceled = await commands.cancel(session, actor=SENDER, command_id=waiting.id)
    assert (canceled.state, canceled.detail) == ("canceled", "canceled by sam")
    for command_id, why in [
        (waiting.id, "already ended"),
        (going.id, "being handed to the broker"),
        (sent.id, "cannot withdraw"),
    ]:
        with pytest.raises(ConflictError, match=why):
            async with database.session() as session:
                await commands.cancel(session, actor=SENDER, command_id=command_id)
    with pytest.raises(NotFoundError):
        async with database.session() as session:
            await commands.cancel(session, actor=SENDER, command_id=uuid.uuid4())
    with pytest.raises(ForbiddenError):
        async with database.session() as session:
            await commands.cancel(session, actor=VIEWER, command_id=going.id)
    assert ("command.cancel", "sam", str(waiting.id)) in await _audit(database)


# -- deadlines -----------------------------------------------------------------------------


async def test_deadlines_end_commands_truthfully(database_with_devices: Database) -> None:
    database = database_with_devices
    queued, sent, delivered = [await _create(database, timeout_s=5) for _ in range(3)]
    later = await _create(database, timeout_s=60)
    await _sent(database, sent.id)
    await _sent(database, delivered.id)
    await _answer(database, delivered.id, "delivered")
    async with database.session() as session:
        assert await commands.next_deadline(session) == queued.expires_at
        assert len(await commands.pending(session, device_id="press-07")) == 4
        due = queued.expires_at + timedelta(seconds=1)
        ended = await commands.expire_due(session, now=due)
        assert await commands.attempt(session, command_id=queued.id, now=due) is None
        assert [c.id for c in await commands.pending(session, now=due)] == [later.id]
        assert [c.id for c in ended] == [queued.id]
        # A station may still accept the published ones, up to its leeway past expires_at:
        # the unanswered one is asked about first, then the unsent one is due.
        ask_at = sent.expires_at + commands.ASK_AFTER
        assert await commands.next_deadline(session) == ask_at
        assert [c.id for c in await commands.ask_due(session, now=ask_at)] == [sent.id]
        assert await commands.next_deadline(session) == later.expires_at
        grace_ends = delivered.expires_at + commands.EXPIRY_GRACE
        ended += await commands.expire_due(session, now=grace_ends)
    assert {c.id: c.state for c in ended} == {
        queued.id: "expired",
        sent.id: "expired",
        delivered.id: "timed_out",
        later.id: "expired",
    }
    assert (await _state(database, sent.id)).detail.startswith("not delivered before its dead")
    assert await _answer(database, delivered.id, "succeeded") == "late"
    ends = [(a, who) for a, who, _ in await _audit(database) if a != "command.create"]
    assert ends == [
        ("command.expired", "system"),
        ("command.expired", "system"),
        ("command.timed_out", "system"),
        ("command.expired", "system"),
        ("command.late_result", "device:press-07"),
    ]


async def test_a_command_never_published_expires_at_its_time(
    database_with_devices: Database,
) -> None:
    database = database_with_devices
    command = await _create(database, "UpdateConfig", args={"interval_s": 2})
    async with database.session() as session:
        assert await commands.next_deadline(session) == command.expires_at
        assert await commands.expire_due(session, now=command.expires_at - timedelta(0.001)) == []
        [ended] = await commands.expire_due(session, now=command.expires_at)
    assert (ended.id, ended.state) == (command.id, "expired")
    assert "v1 withdrawn" in (await _state(database, command.id)).detail


async def test_a_station_applying_within_its_leeway_ends_applied_not_expired(
    database_with_devices: Database,
) -> None:
    """The station accepts a command up to its signing leeway past expires_at: the server
    waits that long before it calls the command expired, and withdraws nothing."""
    database = database_with_devices
    await _edit(database, interval_s=1)
    command = await _create(database, "UpdateConfig", args={"interval_s": 2})
    await _sent(database, command.id)
    # The station's clock, the whole leeway behind ours, reads expires_at + its leeway.
    late = command.expires_at + timedelta(milliseconds=2 * ACCEPT_LEEWAY_MS)
    async with database.session() as session:
        assert await commands.expire_due(session, now=command.expires_at) == []
        assert await commands.expire_due(session, now=late) == []
    assert await _answer(database, command.id, "delivered") == "moved"
    assert await _answer(database, command.id, "succeeded") == "moved"
    async with database.session() as session:
        assert await commands.expire_due(session, now=late + commands.EXPIRY_GRACE) == []
    assert (await _state(database, command.id)).state == "succeeded"
    assert await _desired(database) == (2, {"interval_s": 2.0})
    assert "command.expired" not in [a for a, _, _ in await _audit(database)]


async def test_an_answer_later_still_corrects_expired_and_reinstates_the_version(
    database_with_devices: Database,
) -> None:
    """A station whose answer waited out a broken link: ``expired`` was wrong, its word wins."""
    database = database_with_devices
    await _edit(database, interval_s=1)
    command = await _create(database, "UpdateConfig", args={"interval_s": 2})
    await _sent(database, command.id)
    async with database.session() as session:
        [ended] = await commands.expire_due(session, now=command.expires_at + commands.EXPIRY_GRACE)
    assert ended.state == "expired"
    assert await _desired(database) == (3, {"interval_s": 1.0})  # withdrawn
    assert await _answer(database, command.id, "succeeded") == "moved"
    corrected = await _state(database, command.id)
    assert (corrected.state, corrected.delivered_at is not None) == ("succeeded", True)
    assert "v2 reinstated: v4" in corrected.detail
    assert await _desired(database) == (4, {"interval_s": 2.0})
    assert await _answer(database, command.id, "succeeded") == "unchanged"
    actions = [(a, who) for a, who, _ in await _audit(database)]
    assert actions[-2:] == [
        ("command.corrected", "device:press-07"),
        ("command.succeeded", "device:press-07"),
    ]


async def test_a_late_delivered_reopens_an_expired_command_until_its_result(
    database_with_devices: Database,
) -> None:
    database = database_with_devices
    command = await _create(database)
    await _sent(database, command.id)
    async with database.session() as session:
        await commands.expire_due(session, now=command.expires_at + commands.EXPIRY_GRACE)
    at = command.expires_at + 2 * commands.EXPIRY_GRACE  # held back by a broken link
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(answers, "utcnow", lambda: at)  # the station's answer is timed there
        assert await _answer(database, command.id, "delivered") == "moved"
    reopened = await _state(database, command.id)
    assert (reopened.state, reopened.finished_at) == ("delivered", None)
    assert reopened.delivered_at == at
    async with database.session() as session:
        assert (
            await commands.next_deadline(session) == reopened.delivered_at + commands.EXPIRY_GRACE
        )
        assert await commands.expire_due(session, now=at + timedelta(minutes=1)) == []
    assert await _answer(database, command.id, "succeeded") == "moved"
    assert await _answer(database, command.id, "rejected") == "late"  # never moves it back


async def test_a_late_refusal_keeps_expired(database_with_devices: Database) -> None:
    database = database_with_devices
    command = await _create(database)
    await _sent(database, command.id)
    async with database.session() as session:
        await commands.expire_due(session, now=command.expires_at + commands.EXPIRY_GRACE)
    assert await _answer(database, command.id, "rejected") == "late"
    assert (await _state(database, command.id)).state == "expired"


async def test_an_unanswered_command_is_asked_about_once_just_past_its_deadline(
    database_with_devices: Database,
) -> None:
    """The question comes at the deadline, not at its grace: the station's word ends it."""
    database = database_with_devices
    await _edit(database, interval_s=1)
    lost = await _create(database, "UpdateConfig", args={"interval_s": 2})
    ran = await _create(database)
    for command in (lost, ran):
        await _sent(database, command.id)
    ask_at = lost.expires_at + commands.ASK_AFTER
    async with database.session() as session:
        assert await commands.next_deadline(session) == ask_at
        assert await commands.ask_due(session, now=ask_at - timedelta(milliseconds=1)) == []
        asked = await commands.ask_due(session, now=ran.expires_at + commands.ASK_AFTER)
        assert [c.id for c in asked] == [lost.id, ran.id]
        assert {c.asked_at for c in asked} == {ran.expires_at + commands.ASK_AFTER}
        assert await commands.ask_due(session, now=ran.expires_at + commands.EXPIRY_GRACE) == []
        again = await commands.asked_unanswered(session, device_id="press-07")
        assert [c.id for c in again] == [lost.id, ran.id]
    # The station never got one: it refuses it from now on, and says so.
    never = Result("press-07", str(lost.id), "rejected", NOT_RECEIVED)
    async with database.session() as session:
        assert await commands.record_result(session, result=never, device_id="press-07") == "moved"
    ended = await _state(database, lost.id)
    assert (ended.state, ended.finished_at is not None) == ("expired", True)
    assert ended.detail.startswith(commands.NEVER_RECEIVED)
    assert "v2 withdrawn: v3" in ended.detail
    assert await _desired(database) == (3, {"interval_s": 1.0})
    # The other ran, its answer lost: the station answers the question from its ledger.
    assert await _answer(database, ran.id, "succeeded") == "moved"
    assert (await _state(database, ran.id)).state == "succeeded"
    # Asked again (a reconnect), or the command arrived after all: refused, as recorded.
    repeat = Result("press-07", str(lost.id), "rejected", NOT_RECEIVED, repeat=True)
    async with database.session() as session:
        assert await commands.record_result(session, result=repeat, device_id="press-07") == (
            "unchanged"
        )
        assert await commands.asked_unanswered(session) == []
        assert await commands.next_deadline(session) is None
    actions = [(a, who) for a, who, _ in await _audit(database) if a != "command.create"]
    assert actions == [
        ("command.expired", "device:press-07"),
        ("command.succeeded", "device:press-07"),
    ]


def test_the_server_waits_out_the_last_moment_a_station_accepts() -> None:
    """The station's acceptance and the server's deadline come from one figure."""
    key = generate_signing_key()
    expires_at = 1_800_000_000_000
    signed = SignedCommand(str(uuid.uuid4()), "press-07", "Ping", {}, expires_at - 5000, expires_at)
    payload = signed.signed(key)
    last = expires_at + ACCEPT_LEEWAY_MS
    keys = [key.public_key()]
    assert isinstance(read_command(payload, "press-07", keys, now_ms=last), SignedCommand)
    assert isinstance(read_command(payload, "press-07", keys, now_ms=last + 1), Refusal)
    # Its last moment, by a clock the whole leeway behind ours, plus its shortest run.
    station_done = timedelta(milliseconds=2 * ACCEPT_LEEWAY_MS, seconds=MIN_RUN_S)
    assert station_done < commands.EXPIRY_GRACE


# -- UpdateConfig --------------------------------------------------------------------------


async def _desired(database: Database) -> tuple[int, dict[str, Any]]:
    async with database.session() as session:
        config = await device_configs.get(session, actor=VIEWER, device_id="press-07")
        return config.desired_version, dict(config.desired)


async def _edit(database: Database, **changes: Any) -> None:
    async with database.session() as session:
        await device_configs.update_desired(
            session, actor=ADMIN, device_id="press-07", changes=changes
        )


async def test_update_config_makes_the_next_desired_version(
    database_with_devices: Database,
) -> None:
    database = database_with_devices
    await _edit(database, interval_s=1)
    command = await _create(database, "UpdateConfig", args={"interval_s": 2, "heartbeat_s": 5})
    assert command.config_version == 2
    assert await _desired(database) == (2, {"interval_s": 2.0, "heartbeat_s": 5})
    async with database.session() as session:
        made = await config_history.get(session, device_id="press-07", version=2)
    assert made is not None
    assert (made.source, made.command_id, made.changed_by) == ("command", command.id, "ada")


async def test_an_undelivered_update_config_is_withdrawn(database_with_devices: Database) -> None:
    database = database_with_devices
    await _edit(database, interval_s=1, units={"temp": "°C"})
    expiring = await _create(database, "UpdateConfig", args={"interval_s": 2, "heartbeat_s": 5})
    async with database.session() as session:
        await commands.expire_due(session, now=expiring.expires_at)
    assert await _desired(database) == (3, {"interval_s": 1.0, "units": {"temp": "°C"}})
    assert "v2 withdrawn: v3" in (await _state(database, expiring.id)).detail
    async with database.session() as session:
        withdrawn = await config_history.get(session, device_id="press-07", version=3)
    assert withdrawn is not None
    assert (withdrawn.source, withdrawn.command_id) == ("withdrawn", expiring.id)

    canceled = await _create(database, "UpdateConfig", args={"units": None})
    async with database.session() as session:
        await commands.cancel(session, actor=ADMIN, command_id=canceled.id)
    assert await _desired(database) == (5, {"interval_s": 1.0, "units": {"temp": "°C"}})


async def test_a_later_version_is_never_withdrawn(database_with_devices: Database) -> None:
    database = database_with_devices
    command = await _create(database, "UpdateConfig", args={"interval_s": 2})
    await _edit(database, heartbeat_s=9)
    async with database.session() as session:
        await commands.cancel(session, actor=ADMIN, command_id=command.id)
    assert await _desired(database) == (2, {"interval_s": 2.0, "heartbeat_s": 9})
    assert "v1 kept: v2 came after it" in (await _state(database, command.id)).detail


async def test_a_delivered_update_config_is_kept_whatever_its_end(
    database_with_devices: Database,
) -> None:
    database = database_with_devices
    command = await _create(database, "UpdateConfig", args={"interval_s": 2})
    await _sent(database, command.id)
    await _answer(database, command.id, "delivered")
    async with database.session() as session:
        await commands.expire_due(session, now=command.expires_at + commands.EXPIRY_GRACE)
    assert (await _state(database, command.id)).state == "timed_out"
    assert await _desired(database) == (1, {"interval_s": 2.0})


# -- reading -------------------------------------------------------------------------------


async def test_pages_are_newest_first_and_filters_narrow_them(
    database_with_devices: Database,
) -> None:
    database = database_with_devices
    made = [await _create(database) for _ in range(3)]
    other = await _create(database, device_id="lathe-1")
    batch = uuid.uuid4()
    batched = await _create(database, "UpdateConfig", args={"interval_s": 3}, batch_id=batch)
    async with database.session() as session:
        page = await commands.list_for_device(
            session, actor=VIEWER, device_id="press-07", limit=2, offset=1
        )
        assert [c.id for c in page] == [made[2].id, made[1].id]
        found = await commands.search(session, actor=VIEWER, device_id="lathe-1")
        assert [c.id for c in found] == [other.id]
        found = await commands.search(session, actor=VIEWER, batch_id=batch)
        assert [c.id for c in found] == [batched.id]
        found = await commands.search(session, actor=VIEWER, kind="UpdateConfig", state="queued")
        assert [c.id for c in found] == [batched.id]
        found = await commands.search(session, actor=VIEWER, until=made[1].created_at)
        assert [c.id for c in found] == [made[0].id]
        assert len(await commands.search(session, actor=VIEWER, since=made[1].created_at)) == 4
        with pytest.raises(NotFoundError):
            await commands.list_for_device(session, actor=VIEWER, device_id="nobody")
        bad_filters: list[tuple[dict[str, Any], str]] = [
            ({"state": "x"}, "state"),
            ({"limit": 201}, "limit"),
        ]
        for bad, field in bad_filters:
            with pytest.raises(InvalidError) as refused:
                await commands.search(session, actor=VIEWER, **bad)
            assert refused.value.field == field
    async with database.session() as session:
        version = await config_history.get(session, device_id="press-07", version=1)
    assert version is not None and version.source == "bulk"
