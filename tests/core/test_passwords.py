"""Password hashing for people (argon2) and devices (Mosquitto's $7$ format)."""

from __future__ import annotations

import pytest
from passlib.hash import argon2

from core.passwords import (
    MOSQUITTO_ITERATIONS,
    hash_password,
    mosquitto_hash,
    new_device_secret,
    verify_mosquitto_hash,
    verify_password,
)

# Runs with the production hashing cost, which the rest of the suite lowers (tests/conftest.py).
pytestmark = pytest.mark.production_argon2


def test_argon2_costs_at_least_rfc_9106s_second_choice() -> None:
    """argon2id with 64 MiB and 3 passes (RFC 9106, section 4): what the suite swaps out."""
    params = argon2.from_string(hash_password("correct horse"))
    assert params.type == "id"
    assert params.memory_cost >= 64 * 1024 and params.rounds >= 3


def test_argon2_round_trip() -> None:
    """The right password verifies, a wrong one does not, and hashes are salted."""
    hashed = hash_password("correct horse")
    assert hashed.startswith("$argon2") and hashed != hash_password("correct horse")
    assert verify_password("correct horse", hashed)
    assert not verify_password("correct horsE", hashed)


def test_no_hash_never_verifies() -> None:
    """An unknown user (no hash) is refused."""
    assert not verify_password("anything", None)


def test_mosquitto_hash_format_and_verification() -> None:
    """$7$iterations$salt$digest, verifying only the right password."""
    encoded = mosquitto_hash("s3cret", salt=b"0123456789ab")
    assert encoded.split("$")[1:3] == ["7", str(MOSQUITTO_ITERATIONS)]
    assert encoded == mosquitto_hash("s3cret", salt=b"0123456789ab")
    assert verify_mosquitto_hash("s3cret", encoded)
    assert not verify_mosquitto_hash("s3cret!", encoded)
    assert mosquitto_hash("s3cret") != mosquitto_hash("s3cret")


@pytest.mark.parametrize(
    "encoded", ["", "plain", "$6$101$c2FsdA==$ZGln", "$7$many$c2FsdA==$ZGln", "$7$101$***$***"]
)
def test_malformed_mosquitto_hashes_match_nothing(encoded: str) -> None:
    """A broken hash is a plain no, never an exception."""
    assert verify_mosquitto_hash("s3cret", encoded) is False


def test_device_secrets_are_long_and_distinct() -> None:
    """Fresh device passwords are unguessable and never repeat."""
    secrets = {new_device_secret() for _ in range(50)}
    assert len(secrets) == 50 and min(map(len, secrets)) >= 32
