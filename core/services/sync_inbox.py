"""The server's word on a station's edit: refused whole, or merged field by field and logged.

Rules, in the order they apply (one edit, in the caller's transaction, which commits it):
- An edit whose ``change_id`` the log holds was decided before: accepted again, untouched
  (a resent password change is signed with the key it replaced).
- Its proof must be its author's: the HMAC of the edit under the edit key the server holds
  for the user it names *now* (``core.edit_keys``), so only someone who knew their current
  password made it; a station's word on who its operator is counts for nothing. No key on
  record (they have not signed in on the web since keys came): refused, as is a bad proof.
- Its changes must pass ``sync_edits.check``; one bad change refuses the edit whole. It may
  carry new edit keys only for the users whose password it sets.
- A stamp more than ``CLOCK_BOUND_MS`` ahead of the server's wall clock is replaced by a
  fresh server stamp and audited (``sync.clock_clamped``). The server's clock observes the
  stamp of an edit it accepts, before writing it, so its own later changes stamp later.
- The person is judged at the edit's stamp by the server's own records
  (``sync_authority``): privileged fields take an Admin then, but one's own password;
  another user's display name takes ``users:manage``; a configuration override takes
  ``config:write``. A refusal is answered and audited (``sync.refused``).
- The server's invariants hold as for the web (``sync_invariants``).
- Per field, the higher stamp wins. A winning change sets its row (whose ``updated_at``
  becomes the higher of its own and the stamp); a configuration override goes through
  ``device_configs.update_desired``, so a new signed version is published as usual. Every
  change of an accepted edit is logged at its stamp, a losing one as history (so a resent
  edit is recognised), and the value that lost, either way, goes to the conflict log when
  it differs (an overwritten one only when it was made elsewhere). Disabling, deleting or
  a new password ends the user's web sign-in sessions. A new password that wins brings the
  edit key the edit carries for it (none carried: none on record, so the old password's key
  signs nothing more). The accepted edit is audited (``sync.accepted``), never with a
  password hash or a key.
Refusals are answers, never exceptions: only the database raises.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core import edit_keys, events, hlc
from core.errors import DomainError
from core.hlc import Stamp
from core.protocol.sync import MAX_REASON, Answer, Edit, FieldChange
from core.services import audit, device_configs, sessions, sync_conflicts, sync_log, users
from core.services.actor import Actor
from core.services.sync_authority import Authority, NotAuthorized
from core.services.sync_authority import at as authority_at
from core.services.sync_edits import Checked, EditError, check
from core.services.sync_invariants import DEFAULTS, OWNERS, Merged, Refused, Rows, keep, rows_of
from core.settings import Settings
from core.sync import capture, entities, words

# A station's clock may run minutes ahead (a PC without time sync; the sync property test
# skews clocks by up to 10 min). Further ahead, its edits would beat every later edit of the
# same field for that long, so the stamp is replaced by the server's own.
CLOCK_BOUND_MS = 15 * 60 * 1000
ALREADY_APPLIED = "already applied"
APPLIED = "applied"
LATER_KEPT = "later values kept for"  # an accepted edit some of whose changes lost
PASSWORD_SHOWN = "password changed"  # what the audit log says instead of a hash
HASH_KEPT = "(a password hash)"  # what the conflict log, which admins read, keeps of one
MAX_ACTOR = 128  # audit_log.actor


async def receive(
    session: AsyncSession, *, device_id: str, edit: Edit, settings: Settings
) -> Answer:
    """Decide on one edit from station ``device_id``: refused, or merged and logged."""
    if await sync_log.has_edit(session, edit.change_id):
        return Answer(edit.change_id, True, ALREADY_APPLIED)
    person = f"{edit.username}@{device_id}"[:MAX_ACTOR]
    unproven = await _unproven(session, edit)
    if unproven is not None:
        return await _refuse(session, edit, device_id, person, unproven)
    try:
        checked = check(edit, device_id=device_id, overrides=settings.station_config_overrides)
        stamp = await _stamp(session, edit, device_id, person)
        checked = [replace(c, change=replace(c.change, stamp=stamp)) for c in checked]
        who = await authority_at(session, user_id=edit.user_id, username=edit.username, stamp=stamp)
        _authorize(checked, who)
        merged = [Merged(c, await _current(session, c.change)) for c in checked]
        rows = await rows_of(session, merged)
        await keep(session, merged, rows, device_id)
        hlc.observe(stamp)  # only now: a refused edit moves no clock; before any write
        await _apply_config(session, merged, edit, person)  # first: it may still refuse
    except (EditError, NotAuthorized, Refused) as error:
        return await _refuse(session, edit, device_id, person, str(error))
    await _apply_rows(session, merged, rows)
    await _store_keys(session, merged, edit)
    _log(session, merged, rows, edit, device_id)
    _keep_conflicts(session, merged, device_id, edit.username)
    await _end_sessions(session, merged, person)
    events.record(session, events.SyncChanged())
    lost = [f"{m.change.entity}.{m.change.field}" for m in merged if not m.wins]
    await _audit(session, "sync.accepted", edit, device_id, person, _accepted(merged, lost))
    return Answer(edit.change_id, True, f"{LATER_KEPT} {', '.join(lost)}" if lost else APPLIED)


async def _unproven(session: AsyncSession, edit: Edit) -> str | None:
    """Why the edit's proof does not show its author made it, or None if it does."""
    key = await users.edit_key_of(session, edit.user_id)
    if key is None:
        return f"no edit key on record for '{edit.username}': they must sign in on the web once"
    if not edit_keys.check(key, edit, edit.proof):
        return f"not signed with {edit.username}'s current password"
    return None


async def _store_keys(session: AsyncSession, merged: Iterable[Merged], edit: Edit) -> None:
    """Each new password that won brings its edit key; without one, none stays on record."""
    for m in merged:
        if m.change.entity == "user" and m.change.field == "password_hash" and m.wins:
            given = edit.keys.get(m.checked.key["id"])
            key = None if given is None else bytes.fromhex(given)
            await users.keep_edit_key(session, user_id=m.checked.key["id"], key=key)


async def _current(session: AsyncSession, change: FieldChange) -> sync_log.Entry | None:
    return await sync_log.current_entry(session, change.entity, change.key, change.field)


async def _stamp(session: AsyncSession, edit: Edit, device_id: str, person: str) -> str:
    """The edit's stamp, or a fresh server stamp if it is too far ahead (audited)."""
    given = edit.changes[0].stamp
    if Stamp.parse(given).wall_ms <= time.time_ns() // 1_000_000 + CLOCK_BOUND_MS:
        return given
    used = hlc.now()
    await audit.record(
        session,
        actor=person,
        action="sync.clock_clamped",
        target_type="device",
        target_id=device_id,
        after={"person": edit.username, "given": given, "used": used},
    )
    return used


def _authorize(checked: Iterable[Checked], who: Authority) -> None:
    """``NotAuthorized`` unless ``who`` could make every change at the edit's stamp."""
    for c in checked:
        entity, field = c.entity.name, c.change.field
        own = entity == "user" and c.key["id"] == who.user_id
        if c.entity is entities.DEVICE_CONFIG:
            if not who.may("config:write"):
                setting = words.field_words("device_config", f"desired.{c.setting}")
                msg = f"changing the {setting} needs config:write, which '{who.username}' lacked"
                raise NotAuthorized(msg)
        elif c.entity.is_privileged(field) and not who.is_admin:
            if not (own and field == "password_hash"):
                msg = f"only an Admin may change a {entity}'s {field}; '{who.username}' was not"
                raise NotAuthorized(msg)
        elif field == "display_name" and not own and not who.may("users:manage"):
            msg = f"changing another user's display name needs users:manage ('{who.username}')"
            raise NotAuthorized(msg)


async def _apply_config(
    session: AsyncSession, merged: list[Merged], edit: Edit, person: str
) -> None:
    """Winning overrides become a new desired version, signed and published as usual.

    Done before any other write: if the device is gone, nothing of the edit is written.
    """
    won = {m.checked.setting: m.change.value for m in merged if m.checked.setting and m.wins}
    if not won:
        return
    device_id = next(m.change.key for m in merged if m.checked.setting)
    actor = Actor(name=person, user_id=edit.user_id, permissions=frozenset({"config:write"}))
    try:
        await device_configs.update_desired(
            session, actor=actor, device_id=device_id, changes=won, source="station", note=person
        )
    except DomainError as error:
        raise Refused(error.message) from error


async def _apply_rows(session: AsyncSession, merged: list[Merged], rows: Rows) -> None:
    """Set the winning fields on their rows (new rows whole); logged by ``_log``, not capture."""
    with capture.applying(session.sync_session):
        for (entity, key), row in rows.items():
            mine = [m for m in merged if m.row == (entity, key)]
            stamp = mine[0].change.stamp
            if row is None:
                given = {m.checked.column: m.change.value for m in mine}
                values = {**DEFAULTS.get(entity, {}), **mine[0].checked.key, **given}
                OWNERS[entity].add_synced_row(session, entity, {**values, "updated_at": stamp})
                continue
            won = [m for m in mine if m.wins]
            for m in won:
                setattr(row, m.checked.column, m.change.value)
            if won:
                row.updated_at = max(row.updated_at, stamp)
            if any(m.change.field == "password_hash" for m in won):
                row.failed_logins, row.locked_until = 0, None  # as a new password on the web
        await session.flush()


def _log(
    session: AsyncSession, merged: list[Merged], rows: Rows, edit: Edit, device_id: str
) -> None:
    """Every change of the edit at its stamp, and the defaults its new rows took."""
    changes = [m.change for m in merged]
    stamp = changes[0].stamp
    for (entity, key), row in rows.items():
        if row is None:
            given = {m.change.field for m in merged if m.row == (entity, key)}
            defaults = DEFAULTS.get(entity, {}).items()
            changes += [
                FieldChange(entity, key, f, v, stamp) for f, v in defaults if f not in given
            ]
    for scope in {device_id if c.entity == "device_config" else None for c in changes}:
        sync_log.record(
            session,
            [c for c in changes if (c.entity == "device_config") == (scope is not None)],
            origin=device_id,
            actor=edit.username,
            scope=scope,
            change_id=edit.change_id,
        )


def _keep_conflicts(
    session: AsyncSession, merged: Iterable[Merged], device_id: str, username: str
) -> None:
    """The value that lost each field, when it differs (and, overwritten, came from elsewhere)."""
    for m in merged:
        current = m.current
        if current is None or current.change.value == m.change.value:
            continue
        if m.wins and current.origin != device_id:
            kept, lost, origin, actor = m.change, current.change, current.origin, current.actor
        elif not m.wins:
            kept, lost, origin, actor = current.change, m.change, device_id, username
        else:
            continue
        if m.change.field == "password_hash":
            kept, lost = replace(kept, value=HASH_KEPT), replace(lost, value=HASH_KEPT)
        sync_conflicts.record(
            session, kept=kept, lost=lost, lost_origin=origin, lost_actor=actor, device_id=device_id
        )


async def _end_sessions(session: AsyncSession, merged: Iterable[Merged], person: str) -> None:
    """A user disabled, deleted or given a new password here signs in on the web again."""
    reasons: dict[Any, str] = {}
    for m in merged:
        if m.change.entity != "user" or not m.wins:
            continue
        field, value, user_id = m.change.field, m.change.value, m.checked.key["id"]
        if field == "deleted" and value:
            reasons[user_id] = "deleted"
        elif field == "is_active" and not value and reasons.get(user_id) != "deleted":
            reasons[user_id] = "disabled"
        elif field == "password_hash":
            reasons.setdefault(user_id, "password_changed")
    for user_id, reason in reasons.items():
        await sessions.end_all_of(session, user_id=user_id, reason=reason, actor=person)


def _accepted(merged: Iterable[Merged], lost: list[str]) -> dict[str, Any]:
    changes = {
        f"{m.change.entity} {m.change.key} {m.change.field}": (
            PASSWORD_SHOWN if m.change.field == "password_hash" else m.change.value
        )
        for m in merged
    }
    return {"changes": changes, "kept_later": lost}


async def _refuse(
    session: AsyncSession, edit: Edit, device_id: str, person: str, reason: str
) -> Answer:
    fields = sorted({f"{c.entity}.{c.field}" for c in edit.changes})
    await _audit(
        session, "sync.refused", edit, device_id, person, {"fields": fields, "reason": reason}
    )
    return Answer(edit.change_id, False, reason[:MAX_REASON])


async def _audit(
    session: AsyncSession,
    action: str,
    edit: Edit,
    device_id: str,
    person: str,
    what: dict[str, Any],
) -> None:
    """One audit entry about ``edit``: its first change names the target (else the device)."""
    first = edit.changes[0] if edit.changes else None
    known = first is not None and first.entity in entities.ENTITIES
    await audit.record(
        session,
        actor=person,
        action=action,
        target_type=first.entity if first is not None and known else "device",
        target_id=first.key[:128] if first is not None and known else device_id,
        after={
            "device": device_id,
            "person": edit.username,
            "change_id": str(edit.change_id),
            "stamp": first.stamp if first is not None else "",
            **what,
        },
    )
