"""Edit keys: derived alike on every side from a password and a user id, and a proof made
with one holds for that edit alone."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from core import edit_keys
from core.protocol.sync import Edit, FieldChange

ADA, BO = uuid.UUID(int=1), uuid.UUID(int=2)
STAMP = "001764170000123.000000.press-07"


def _edit(**changed: object) -> Edit:
    change = FieldChange("user", str(ADA), "display_name", "Ada L.", STAMP)
    edit = Edit(uuid.UUID(int=9), ADA, "ada", (change,), "")
    return replace(edit, **changed)  # type: ignore[arg-type]


def test_a_key_is_the_passwords_and_the_users_and_nobody_elses() -> None:
    key = edit_keys.derive("correct horse", ADA)
    assert len(key) == edit_keys.KEY_BYTES
    assert edit_keys.derive("correct horse", ADA) == key  # the station's and the server's
    assert edit_keys.derive("correct horsf", ADA) != key
    assert edit_keys.derive("correct horse", BO) != key  # salted by the user's id
    assert edit_keys.salt(ADA) != edit_keys.salt(BO)
    assert len(edit_keys.salt(ADA)) == edit_keys.SALT_BYTES


def test_the_cost_is_the_password_hashes_and_tests_lower_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Production derives at argon2-cffi's RFC 9106 low-memory profile; the suite's autouse
    fixture lowers it, and a key depends on the cost (both sides must agree on it)."""
    cheap = edit_keys.derive("correct horse", ADA)
    assert (edit_keys.TIME_COST, edit_keys.MEMORY_KIB, edit_keys.PARALLELISM) == (1, 1024, 1)
    monkeypatch.setattr(edit_keys, "TIME_COST", 2)
    assert edit_keys.derive("correct horse", ADA) != cheap


@pytest.mark.production_argon2
def test_production_cost() -> None:
    assert (edit_keys.TIME_COST, edit_keys.MEMORY_KIB, edit_keys.PARALLELISM) == (3, 65536, 4)


def test_a_proof_holds_for_the_edit_it_was_made_for_only() -> None:
    key = edit_keys.derive("correct horse", ADA)
    edit = _edit(keys={BO: "ab" * 32})
    proof = edit_keys.prove(key, edit)
    assert len(proof) == edit_keys.PROOF_CHARS and int(proof, 16) >= 0
    assert edit_keys.check(key, edit, proof)
    assert edit_keys.check(key, replace(edit, proof=proof), proof)  # the proof is not covered
    assert not edit_keys.check(edit_keys.derive("wrong horse", ADA), edit, proof)
    other = FieldChange("user", str(ADA), "display_name", "Mallory", STAMP)
    for forged in (
        replace(edit, username="root"),
        replace(edit, user_id=BO),
        replace(edit, change_id=uuid.uuid4()),
        replace(edit, changes=(other,)),
        replace(edit, keys={BO: "cd" * 32}),
        replace(edit, keys={}),
    ):
        assert not edit_keys.check(key, forged, proof)
    for bad in ("", proof.upper(), proof[:-1], "é" * 64):
        assert not edit_keys.check(key, edit, bad)


def test_the_canonical_form_is_the_same_after_the_wire() -> None:
    """The server checks the edit it parsed: lists for tuples, keys in any order."""
    change = FieldChange("device_config", "press-07", "desired.interval_s", 2.5, STAMP)
    sent = _edit(changes=(change,), keys={BO: "ab" * 32, ADA: "cd" * 32})
    wire = sent.to_wire()
    received = Edit(
        uuid.UUID(wire["change_id"]),
        uuid.UUID(wire["user_id"]),
        wire["username"],
        tuple(FieldChange.from_wire(c) for c in wire["changes"]),
        "",
        {uuid.UUID(k): v for k, v in reversed(wire["keys"].items())},
    )
    assert edit_keys.canonical(received) == edit_keys.canonical(sent)


def test_an_edit_never_shows_the_keys_it_carries() -> None:
    key = edit_keys.derive("correct horse", ADA)
    edit = _edit(keys={ADA: key.hex()})
    assert key.hex() not in repr(edit) and key.hex() in str(edit.to_wire())
    assert hash(edit) == hash(replace(edit, keys={}))  # hashable, the keys left out
