"""Every change to a synced row is logged field by field, in the transaction that makes it.

The server's sessions are ``CapturingSession``s (``core.db.engine.Database``): before each
flush, the synced rows being inserted or updated have their changed fields written to the
log (``sync_changes``) with the row's new ``updated_at`` as their stamp — a fresh one when
the service did not set it. No service has to remember: a user edit, a revoked grant, a
new configuration version all reach the stations the same way.

Changes a station made are applied by the sync inbox, which logs them with the station's
own stamp and origin; it marks its session ``applying`` so they are not logged twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from core import events, hlc
from core.protocol.sync import FieldChange
from core.services import sync_log
from core.sync import entities

SERVER = "server"  # the origin of changes made on the server
_APPLYING = "pp.sync.applying"  # in ``session.info``: the inbox logs these itself
_ACTOR = "pp.sync.actor"  # in ``session.info``: who the logged changes are attributed to


class CapturingSession(Session):
    """The server's sessions: they log synced changes (``sync_session_class`` of its maker)."""


@contextmanager
def applying(session: Session) -> Iterator[None]:
    """Within: synced rows changed on ``session`` are not logged (the caller logs them)."""
    session.info[_APPLYING] = True
    try:
        yield
    finally:
        session.info.pop(_APPLYING, None)


def attribute_to(session: Session, actor: str) -> None:
    """Name who the changes logged on ``session`` from now on are made by."""
    session.info[_ACTOR] = actor


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get(_APPLYING):
        return
    logged = False
    for obj in [*session.new, *session.dirty]:
        entity = entities.of(obj)
        if entity is None:
            continue
        changed = _changed_fields(entity, obj, new=obj in session.new)
        if not changed:
            continue
        stamp = _stamp(obj)
        key = entities.key_of(entity, obj)
        sync_log.record(
            session,
            (FieldChange(entity.name, key, f, v, stamp) for f, v in changed.items()),
            origin=SERVER,
            actor=session.info.get(_ACTOR, ""),
            scope=getattr(obj, entity.scoped_by) if entity.scoped_by else None,
        )
        logged = True
    if logged:
        session.info.setdefault(events.PENDING_KEY, []).append(events.SyncChanged())


event.listen(CapturingSession, "before_flush", _before_flush)


def _changed_fields(entity: entities.Entity, obj: Any, *, new: bool) -> dict[str, Any]:
    if new:
        _fill_defaults(entity, obj)
        return entities.field_values(entity, obj)
    state = inspect(obj)
    changed: dict[str, Any] = {}
    for column in entity.fields:
        history = state.attrs[column].history
        if not history.has_changes():
            continue
        value = getattr(obj, column)
        if column in entity.expand:
            old = history.deleted[0] if history.deleted else {}
            changed.update(entities.expanded_changes(column, old or {}, value or {}))
        elif not history.deleted or history.deleted[0] != value:
            changed[column] = value
    return changed


def _fill_defaults(entity: entities.Entity, obj: Any) -> None:
    """Give a new row its column defaults now, so its key and first values can be logged."""
    columns = inspect(type(obj)).columns
    for name in (*entity.key, *entity.fields):
        default = columns[name].default
        if getattr(obj, name) is None and default is not None:
            value = default.arg(None) if default.is_callable else default.arg
            setattr(obj, name, value)


def _stamp(obj: Any) -> str:
    """The row's new ``updated_at``: the one the service set, or a fresh one."""
    added, deleted = inspect(obj).attrs["updated_at"].history[:2]
    if added and added[0] and (not deleted or added[0] != deleted[0]):
        return str(added[0])
    obj.updated_at = hlc.now()
    return str(obj.updated_at)
