"""A station's edits on ``sync/up``: encode → read round trips with their proof and the new
edit keys they carry; an edit without a well-formed proof or keys drops the message."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from core.protocol.drops import Drop, DropReason
from core.protocol.sync import MAX_KEYS, Edit, FieldChange, Pull, Up, read_up

DEVICE = "press-07"
ADA = uuid.UUID(int=1)
STAMP = "001764170000123.000000.press-07"
PROOF = "0123456789abcdef" * 4


def _edit(key: str | None = None) -> Edit:
    change = FieldChange("user", str(ADA), "password_hash", "$argon2id$…", STAMP)
    return Edit(uuid.uuid4(), ADA, "ada", (change,), PROOF, {ADA: key} if key else {})


def test_an_edit_travels_with_its_proof_and_keys() -> None:
    up = Up(DEVICE, (_edit("ab" * 32), _edit()), pending=2)
    assert read_up(up.encode(), DEVICE) == up
    assert read_up(Pull(DEVICE, 7, 1).encode(), DEVICE) == Pull(DEVICE, 7, 1)


def test_keys_may_be_left_out_on_the_wire() -> None:
    message = orjson.loads(Up(DEVICE, (_edit(),)).encode())
    del message["edits"][0]["keys"]
    read = read_up(orjson.dumps(message), DEVICE)
    assert isinstance(read, Up) and read.edits[0].keys == {}


def _with(**fields: Any) -> bytes:
    message = orjson.loads(Up(DEVICE, (_edit("ab" * 32),)).encode())
    edit = message["edits"][0]
    for name, value in fields.items():
        if value is None:
            del edit[name]
        else:
            edit[name] = value
    return orjson.dumps(message)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"proof": None}, "proof"),
        ({"proof": PROOF.upper()}, "proof"),
        ({"proof": PROOF[:-1]}, "proof"),
        ({"proof": 7}, "proof"),
        ({"keys": []}, "keys"),
        ({"keys": {str(ADA): "AB" * 32}}, "edit key"),
        ({"keys": {str(ADA): "ab" * 31}}, "edit key"),
        ({"keys": {"not a uuid": "ab" * 32}}, "UUID"),
        ({"keys": {str(uuid.uuid4()): "ab" * 32 for _ in range(MAX_KEYS + 1)}}, "at most"),
    ],
)
def test_an_edit_without_a_well_formed_proof_or_keys_is_dropped(
    fields: dict[str, Any], why: str
) -> None:
    read = read_up(_with(**fields), DEVICE)
    assert isinstance(read, Drop) and read.reason is DropReason.MALFORMED
    assert why in read.detail
