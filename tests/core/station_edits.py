"""Station edits built by hand, as a station's replica would record them (signed)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from core import edit_keys, hlc
from core.hlc import Stamp
from core.protocol.sync import Edit, FieldChange

Change = tuple[str, str, str, Any]  # (entity, key, field, value)


def station_stamp(device_id: str, *, of: str | None = None, ahead_ms: int = 0) -> str:
    """A stamp of ``device_id``'s clock at the server's stamp ``of`` (default: now), shifted.

    At the same wall time and counter the station's stamp sorts just below the server's
    (its node, a device id, sorts before "server"), so ``of=<a server stamp>`` is a stamp
    just before that server change, and one taken after it is later.
    """
    base = Stamp.parse(of or hlc.now())
    return str(Stamp(base.wall_ms + ahead_ms, base.counter, device_id))


def edit(
    user_id: uuid.UUID,
    username: str,
    stamp: str,
    *changes: Change,
    key: bytes,
    keys: dict[uuid.UUID, bytes] | None = None,
    change_id: uuid.UUID | None = None,
) -> Edit:
    """One edit of ``changes``, all at ``stamp``, made by ``username`` and signed with
    ``key`` (their edit key, or a forger's guess); ``keys``: new edit keys it carries."""
    unsigned = Edit(
        change_id=change_id or uuid.uuid4(),
        user_id=user_id,
        username=username,
        changes=tuple(FieldChange(e, k, f, v, stamp) for e, k, f, v in changes),
        proof="",
        keys={user: new.hex() for user, new in (keys or {}).items()},
    )
    return replace(unsigned, proof=edit_keys.prove(key, unsigned))
