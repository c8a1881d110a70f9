"""Edit keys: a station's edit proves that its author knew their password when they made it.

A station holds every password hash (its operators sign in offline), so a hash proves
nothing: a compromised station could name any Admin as an edit's author. An *edit key* is
derived from the password itself (argon2id, salted by the user's id) where the password is
seen in clear: the server derives it when it sets a password or signs someone in on the
web, and keeps it beside the hash (``users.edit_key``); a station derives it when someone
signs in there and signs each of their edits with it (HMAC-SHA256 over ``canonical``). The
server checks the proof against the key on record, so only someone who knew the person's
current password can have made it.

Rules:
- A key is as good as the password for sync (not for signing in): it is never logged,
  never synced, never written to a replica, never shown in a repr.
- Both sides must derive alike: changing the cost below changes every key, and everyone
  then signs in on the web once before their station edits count again.
- Deriving is as slow as a password check (~0.2 s): run it in a worker thread.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import orjson
from argon2.low_level import Type, hash_secret_raw

# argon2id at the cost core.passwords hashes passwords with (argon2-cffi's RFC 9106 low-memory
# profile): the key sits beside the hash on the server and proofs made with it travel on the
# wire, so guessing a password from either must cost as much as guessing it from the hash.
TIME_COST = 3  # passes over memory
MEMORY_KIB = 64 * 1024  # 64 MiB: what makes a guess costly on GPUs
PARALLELISM = 4  # lanes; the same as the password hashes
KEY_BYTES = 32  # an HMAC-SHA256 key of the hash's own size
SALT_BYTES = 16  # argon2's recommended salt length
SALT_CONTEXT = b"pp-edit-key:"  # the salt is the user's own, and used for nothing else
PROOF_CHARS = 2 * hashlib.sha256().digest_size  # a proof in hex


class Signed(Protocol):
    """What a proof covers: an edit's identity, author, changes and the keys it carries."""

    @property
    def change_id(self) -> uuid.UUID:
        """The edit's id."""
        ...

    @property
    def user_id(self) -> uuid.UUID:
        """Its author's id."""
        ...

    @property
    def username(self) -> str:
        """Its author's username."""
        ...

    @property
    def changes(self) -> Sequence[Any]:
        """Its field changes (each with ``to_wire()``)."""
        ...

    @property
    def keys(self) -> Mapping[uuid.UUID, str]:
        """New edit keys (hex) it carries, by user id."""
        ...


def salt(user_id: uuid.UUID) -> bytes:
    """The salt of ``user_id``'s edit key: the same on every side, nobody else's."""
    return hashlib.sha256(SALT_CONTEXT + user_id.bytes).digest()[:SALT_BYTES]


def derive(password: str, user_id: uuid.UUID) -> bytes:
    """The edit key of ``user_id`` with ``password`` (blocking, as slow as a password check)."""
    return hash_secret_raw(
        password.encode(),
        salt(user_id),
        time_cost=TIME_COST,
        memory_cost=MEMORY_KIB,
        parallelism=PARALLELISM,
        hash_len=KEY_BYTES,
        type=Type.ID,
    )


def canonical(edit: Signed) -> bytes:
    """The bytes a proof covers: the edit as JSON, keys sorted, the same on every side."""
    body = {
        "change_id": str(edit.change_id),
        "user_id": str(edit.user_id),
        "username": edit.username,
        "changes": [change.to_wire() for change in edit.changes],
        "keys": {str(user_id): key for user_id, key in edit.keys.items()},
    }
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


def prove(key: bytes, edit: Signed) -> str:
    """The proof (hex HMAC-SHA256) that the holder of ``key`` made ``edit``."""
    return hmac.new(key, canonical(edit), hashlib.sha256).hexdigest()


def check(key: bytes, edit: Signed, proof: str) -> bool:
    """Whether ``proof`` is ``edit``'s under ``key`` (compared in constant time)."""
    try:
        given = proof.encode("ascii")
    except (UnicodeEncodeError, AttributeError):
        return False
    return hmac.compare_digest(prove(key, edit).encode("ascii"), given)
