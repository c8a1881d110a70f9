"""Signed commands and config: JWS round trips, every way of refusing, keys on disk, expiry."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jws

from core.protocol import signing
from core.protocol.signing import (
    DEFAULT_LEEWAY_MS,
    TOKEN_TYPE,
    ExpiredError,
    SignatureError,
    SigningKey,
    VerifyingKey,
    check_validity,
    generate_signing_key,
    load_or_create,
    sign,
    verify,
    verify_envelope,
)

ALGORITHMS: list[signing.Algorithm] = ["Ed25519", "ES256"]
ED = generate_signing_key("Ed25519")
ES = generate_signing_key("ES256")
COMMAND = {"cmd_id": "c-1", "name": "reboot", "args": {"delay_s": 5}, "issued_at": 1_000}


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _unb64(segment: bytes) -> bytes:
    return base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4))


def _token(header: dict[str, Any], payload: bytes, signature: bytes = b"") -> bytes:
    return b".".join([_b64(json.dumps(header).encode()), _b64(payload), _b64(signature)])


def _header(token: bytes) -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(_unb64(token.split(b".")[0])))


def _sign_raw(header: dict[str, Any], payload: bytes, key: SigningKey) -> bytes:
    """A token signed by ``key`` whatever its header and payload (bypasses ``sign``)."""
    signing_input = b".".join([_b64(json.dumps(header).encode()), _b64(payload)])
    signature = jws.JWSRegistry.algorithms[key.algorithm].sign(signing_input, key.jwk)
    return signing_input + b"." + _b64(signature)


def _good_header(key: SigningKey) -> dict[str, Any]:
    return {"alg": key.algorithm, "kid": key.kid, "typ": TOKEN_TYPE}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_round_trip_returns_the_payload_and_names_the_key(algorithm: signing.Algorithm) -> None:
    key = generate_signing_key(algorithm)
    token = sign(COMMAND, key)
    assert verify(token, key.public_key()) == COMMAND
    assert verify(token.decode(), [ED.public_key(), key.public_key()]) == COMMAND
    assert _header(token) == {"alg": algorithm, "kid": key.kid, "typ": TOKEN_TYPE}


def test_payload_is_canonical_json_whatever_the_key_order() -> None:
    token = sign({"b": 1, "a": {"d": 2, "c": 3}}, ED)
    assert _unb64(token.split(b".")[1]) == b'{"a":{"c":3,"d":2},"b":1}'
    assert sign({"a": {"c": 3, "d": 2}, "b": 1}, ED) == token  # Ed25519 is deterministic


def test_kid_is_the_rfc7638_thumbprint_of_the_public_key() -> None:
    public = ED.public_key().to_jwk()
    members = json.dumps({k: public[k] for k in ("crv", "kty", "x")}, separators=(",", ":"))
    assert ED.kid == _b64(hashlib.sha256(members.encode()).digest()).decode()
    assert ED.public_key().kid == ED.kid != ES.kid


@pytest.mark.parametrize("key", [ED, ES], ids=ALGORITHMS)
def test_raw_signing_helper_is_honest(key: SigningKey) -> None:
    """The refusals below that use ``_sign_raw`` are about the header, not the signature."""
    assert verify(_sign_raw(_good_header(key), b'{"a":1}', key), key.public_key()) == {"a": 1}


def test_tampered_payload_is_a_bad_signature() -> None:
    header, _, signature = sign(COMMAND, ED).split(b".")
    forged = json.dumps({**COMMAND, "name": "wipe"}, sort_keys=True).encode()
    with pytest.raises(SignatureError, match="bad signature"):
        verify(b".".join([header, _b64(forged), signature]), ED.public_key())


@pytest.mark.parametrize("key", [ED, ES], ids=ALGORITHMS)
def test_flipped_signature_byte_is_refused(key: SigningKey) -> None:
    header, payload, signature = sign(COMMAND, key).split(b".")
    raw = bytearray(_unb64(signature))
    raw[0] ^= 0x01
    with pytest.raises(SignatureError, match="bad signature"):
        verify(b".".join([header, payload, _b64(bytes(raw))]), key.public_key())


def test_signature_by_another_key_under_a_trusted_kid_is_refused() -> None:
    other = generate_signing_key("Ed25519")
    token = _sign_raw(_good_header(ED), b'{"cmd_id":"x"}', other)
    with pytest.raises(SignatureError, match="bad signature"):
        verify(token, ED.public_key())


def test_unknown_kid_is_refused() -> None:
    with pytest.raises(SignatureError, match="unknown kid"):
        verify(sign(COMMAND, ED), [ES.public_key(), generate_signing_key().public_key()])
    with pytest.raises(SignatureError, match="unknown kid"):
        verify(sign(COMMAND, ED), [])


def test_alg_none_is_refused() -> None:
    header = {**_good_header(ED), "alg": "none"}
    with pytest.raises(SignatureError, match="not accepted"):
        verify(_token(header, json.dumps(COMMAND).encode()), ED.public_key())


def test_hs256_keyed_with_the_public_key_is_refused() -> None:
    """The classic confusion attack: an HMAC whose secret is the server's public key."""
    header = {**_good_header(ED), "alg": "HS256"}
    signing_input = b".".join([_b64(json.dumps(header).encode()), _b64(b'{"cmd_id":"x"}')])
    mac = hmac.new(ED.public_key().to_pem(), signing_input, hashlib.sha256).digest()
    with pytest.raises(SignatureError, match="not accepted"):
        verify(signing_input + b"." + _b64(mac), ED.public_key())


def test_deprecated_eddsa_name_is_refused_even_with_a_valid_signature() -> None:
    token = _sign_raw({**_good_header(ED), "alg": "EdDSA"}, b'{"cmd_id":"x"}', ED)
    with pytest.raises(SignatureError, match="not accepted"):
        verify(token, ED.public_key())


def test_alg_that_does_not_match_the_kid_is_refused() -> None:
    token = _sign_raw({**_good_header(ED), "alg": "ES256"}, b'{"cmd_id":"x"}', ES)
    with pytest.raises(SignatureError, match="does not match"):
        verify(token, [ED.public_key(), ES.public_key()])


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"typ": "JWT"}, "wrong token type"),
        ({"typ": None}, "wrong token type"),
        ({"jwk": {"kty": "OKP"}}, "header must hold only"),
        ({"crit": ["exp"], "exp": 1}, "header must hold only"),
    ],
)
def test_header_beyond_ours_is_refused(change: dict[str, Any], reason: str) -> None:
    header = {k: v for k, v in {**_good_header(ED), **change}.items() if v is not None}
    with pytest.raises(SignatureError, match=reason):
        verify(_sign_raw(header, b'{"cmd_id":"x"}', ED), ED.public_key())


@pytest.mark.parametrize("payload", [b"[1,2]", b'"text"', b"42", b"null", b"not json", b""])
def test_signed_payload_that_is_not_a_json_object_is_refused(payload: bytes) -> None:
    with pytest.raises(SignatureError, match="payload is not"):
        verify(_sign_raw(_good_header(ED), payload, ED), ED.public_key())


@pytest.mark.parametrize(
    "token",
    [b"", "", b"a.b", b"a.b.c.d", b"!!!.e30.", "\ud800.x.y", "é.e30.", b"e30.e30.", b"W10.e30."],
)
def test_malformed_tokens_are_refused(token: bytes | str) -> None:
    with pytest.raises(SignatureError):
        verify(token, ED.public_key())


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ('["alg"]', "header must hold only"),
        ('"xalgx"', "header must hold only"),
        ('{"alg": ["none"]}', "not accepted"),
        (f'{{"alg": "Ed25519", "kid": ["x"], "typ": "{TOKEN_TYPE}"}}', "unknown kid"),
    ],
)
def test_headers_of_odd_json_shapes_are_refused(header: str, reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify(_b64(header.encode()) + b".e30.", ED.public_key())


@pytest.mark.parametrize("key", [ED, ES], ids=ALGORITHMS)
def test_pem_and_jwk_round_trips_keep_the_key(key: SigningKey) -> None:
    for loaded in (SigningKey.from_pem(key.to_pem()), SigningKey.from_jwk(key.to_jwk())):
        assert loaded == key
        assert verify(sign(COMMAND, loaded), key.public_key()) == COMMAND
    public = key.public_key()
    for loaded_public in (
        VerifyingKey.from_pem(public.to_pem()),
        VerifyingKey.from_jwk(public.to_jwk()),
    ):
        assert loaded_public == public
        assert verify(sign(COMMAND, key), loaded_public) == COMMAND
    assert key.to_pem().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.to_pem().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert "d" not in public.to_jwk()
    assert public.to_jwk()["kid"] == key.kid


def test_keys_refuse_the_wrong_half_and_foreign_curves() -> None:
    with pytest.raises(ValueError, match="private key PEM"):
        SigningKey.from_pem(ED.public_key().to_pem())
    with pytest.raises(ValueError, match="public key PEM"):
        VerifyingKey.from_pem(ED.to_pem())
    with pytest.raises(ValueError, match="needs a public key"):
        VerifyingKey.from_jwk(ED.to_jwk())
    with pytest.raises(ValueError):
        SigningKey.from_pem(b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    p384 = ec.generate_private_key(ec.SECP384R1())
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for native in (p384, rsa_key):
        pem = native.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        with pytest.raises(ValueError, match="unsupported"):
            SigningKey.from_pem(pem)
    with pytest.raises(ValueError, match="RFC 9864"):
        generate_signing_key(cast(Any, "EdDSA"))


def test_repr_shows_no_key_material() -> None:
    private_d = str(ED.to_jwk()["d"])
    assert private_d not in repr(ED)
    assert ED.kid in repr(ED)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_load_or_create_writes_a_0600_key_once(
    tmp_path: Path, algorithm: signing.Algorithm
) -> None:
    path = tmp_path / "data" / "signing-key.pem"
    created = load_or_create(path, algorithm=algorithm)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert created.algorithm == algorithm
    assert SigningKey.from_pem(path.read_bytes()) == created
    again = load_or_create(path, algorithm="Ed25519")  # the stored key wins over the argument
    assert again == created
    assert verify(sign(COMMAND, again), created.public_key()) == COMMAND
    assert sorted(p.name for p in path.parent.iterdir()) == ["signing-key.pem"]


def test_load_or_create_keeps_an_existing_key(tmp_path: Path) -> None:
    path = tmp_path / "signing-key.pem"
    path.write_bytes(ES.to_pem())
    assert load_or_create(path) == ES


NOW = 1_700_000_000_000


def _window(issued_at: Any, expires_at: Any) -> dict[str, Any]:
    return {"cmd_id": "c-1", "issued_at": issued_at, "expires_at": expires_at}


def test_validity_accepts_inside_the_window_and_within_leeway() -> None:
    check_validity(_window(NOW - 1_000, NOW + 1_000), NOW)
    check_validity(_window(NOW + DEFAULT_LEEWAY_MS, NOW + 2 * DEFAULT_LEEWAY_MS), NOW)
    check_validity(_window(NOW - 10 * DEFAULT_LEEWAY_MS, NOW - DEFAULT_LEEWAY_MS), NOW)


def test_validity_refuses_expired_beyond_leeway() -> None:
    with pytest.raises(ExpiredError, match="expired"):
        check_validity(_window(NOW - 10 * DEFAULT_LEEWAY_MS, NOW - DEFAULT_LEEWAY_MS - 1), NOW)
    with pytest.raises(ExpiredError):
        check_validity(_window(NOW - 10_000, NOW - 1), NOW, leeway_ms=0)


def test_validity_refuses_not_yet_valid_beyond_leeway_without_calling_it_expired() -> None:
    with pytest.raises(SignatureError, match="not valid yet") as caught:
        check_validity(_window(NOW + DEFAULT_LEEWAY_MS + 1, NOW + 10 * DEFAULT_LEEWAY_MS), NOW)
    assert not isinstance(caught.value, ExpiredError)


@pytest.mark.parametrize(
    "payload",
    [
        {"expires_at": NOW + 1},
        {"issued_at": NOW},
        _window(NOW, "later"),
        _window(float(NOW), NOW + 1),
        _window(True, NOW + 1),
        _window(-1, NOW + 1),
        _window(NOW, None),
    ],
)
def test_validity_refuses_missing_or_invalid_fields(payload: dict[str, Any]) -> None:
    with pytest.raises(SignatureError, match="missing or not"):
        check_validity(payload, NOW)


def test_validity_refuses_a_window_that_ends_before_it_starts() -> None:
    with pytest.raises(SignatureError, match="before issued_at"):
        check_validity(_window(NOW, NOW - 1), NOW)


def test_verify_envelope_checks_signature_then_window() -> None:
    token = sign(_window(NOW, NOW + 60_000), ES)
    assert verify_envelope(token, ES.public_key(), now_ms=NOW)["cmd_id"] == "c-1"
    with pytest.raises(ExpiredError):
        verify_envelope(token, ES.public_key(), now_ms=NOW + 60_001, leeway_ms=0)
    with pytest.raises(SignatureError, match="unknown kid"):
        verify_envelope(token, ED.public_key(), now_ms=NOW)


@given(st.one_of(st.binary(), st.text()))
def test_verify_only_ever_raises_signature_error_on_arbitrary_input(token: bytes | str) -> None:
    with pytest.raises(SignatureError):
        verify(token, [ED.public_key(), ES.public_key()])


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
HEADER_VALUES = st.sampled_from(["Ed25519", "ES256", "EdDSA", "none", "HS256", ED.kid, TOKEN_TYPE])


@given(
    header=st.dictionaries(
        st.sampled_from(["alg", "kid", "typ", "crit", "b64", "x"]), HEADER_VALUES | JSON
    )
    | JSON,
    payload=st.binary(max_size=64) | JSON.map(lambda v: json.dumps(v).encode()),
    signature=st.binary(max_size=80),
)
def test_verify_only_ever_raises_signature_error_on_well_formed_forgeries(
    header: Any, payload: bytes, signature: bytes
) -> None:
    token = b".".join([_b64(json.dumps(header).encode()), _b64(payload), _b64(signature)])
    with pytest.raises(SignatureError):
        verify(token, [ED.public_key(), ES.public_key()])
