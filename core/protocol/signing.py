"""Signed commands and desired config: compact JWS (RFC 7515) over canonical JSON.

The server signs with one private key kept in its data dir; a device verifies against the
public keys it trusts, picked by ``kid`` (the RFC 7638 thumbprint) so keys can rotate.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import orjson
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey

Algorithm = Literal["Ed25519", "ES256"]
# RFC 9864 replaces the polymorphic "EdDSA" with the fully specified "Ed25519" (joserfc warns
# on "EdDSA"). Nothing else is accepted: never "none", never HS* (a public key as HMAC secret).
ALGORITHMS: frozenset[str] = frozenset({"Ed25519", "ES256"})
TOKEN_TYPE = "pp-signed+json"  # explicit typing (RFC 8725 §3.11): no other JWS passes for ours
# Anything beyond these (crit, b64, jwk, jku, x5u) is refused: we never produce it, and
# honouring it would open key injection or a second payload encoding.
HEADER_FIELDS: frozenset[str] = frozenset({"alg", "kid", "typ"})
# Stations may run for weeks on a drifting RTC before NTP returns; 5 minutes (Kerberos' long-
# standing default) absorbs that without stretching a command's life much, and replays within
# it are stopped by the device's cmd_id ledger anyway.
DEFAULT_LEEWAY_MS = 5 * 60 * 1000
_CURVES: dict[str, Algorithm] = {"Ed25519": "Ed25519", "P-256": "ES256"}
_REGISTRY = jws.JWSRegistry(algorithms=sorted(ALGORITHMS))

Jwk = OKPKey | ECKey


class SignatureError(ValueError):
    """A signed message was refused: malformed, unknown key, wrong algorithm or forged."""


class ExpiredError(SignatureError):
    """A signed message is past its ``expires_at``."""


@dataclass(frozen=True)
class _Key:
    jwk: Jwk = field(repr=False, compare=False)
    algorithm: Algorithm = field(init=False)
    kid: str = field(init=False)
    _private: ClassVar[bool]

    def __post_init__(self) -> None:
        curve = self.jwk.curve_name if isinstance(self.jwk, OKPKey | ECKey) else None
        if curve not in _CURVES:
            msg = f"unsupported key: {curve!r}; use Ed25519 or P-256"
            raise ValueError(msg)
        if self.jwk.is_private != self._private:
            msg = f"{type(self).__name__} needs a {'private' if self._private else 'public'} key"
            raise ValueError(msg)
        object.__setattr__(self, "algorithm", _CURVES[curve])
        object.__setattr__(self, "kid", self.jwk.thumbprint())

    @classmethod
    def from_pem(cls, data: bytes) -> Self:
        """Load the key from PEM (unencrypted PKCS#8 when private)."""
        return cls(_import_pem(data, private=cls._private))

    @classmethod
    def from_jwk(cls, data: Mapping[str, Any]) -> Self:
        """Load the key from a JWK dict."""
        return cls(_import_jwk(data))

    def to_jwk(self) -> dict[str, Any]:
        """The key as a JWK dict, with its ``alg`` and ``kid``."""
        return self.jwk.as_dict(private=self._private, alg=self.algorithm, kid=self.kid)

    def to_pem(self) -> bytes:
        """The key as PEM (PKCS#8 when private, SubjectPublicKeyInfo when public)."""
        return self.jwk.as_pem(private=self._private)


@dataclass(frozen=True)
class VerifyingKey(_Key):
    """A public key a device trusts, named by its ``kid``."""

    _private: ClassVar[bool] = False


@dataclass(frozen=True)
class SigningKey(_Key):
    """The server's private key; ``repr`` never shows key material."""

    _private: ClassVar[bool] = True

    def public_key(self) -> VerifyingKey:
        """The matching public key, for devices."""
        return VerifyingKey(type(self.jwk).import_key(self.jwk.as_dict(private=False)))


def _import_pem(data: bytes, *, private: bool) -> Jwk:
    try:
        native = load_pem_private_key(data, None) if private else load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        msg = f"not a {'private' if private else 'public'} key PEM: {error}"
        raise ValueError(msg) from error
    if isinstance(native, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return OKPKey.import_key(native)
    if isinstance(native, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return ECKey.import_key(native)
    msg = f"unsupported key type {type(native).__name__}; use Ed25519 or P-256"
    raise ValueError(msg)


def _import_jwk(data: Mapping[str, Any]) -> Jwk:
    kinds: dict[Any, type[Jwk]] = {"OKP": OKPKey, "EC": ECKey}
    kind = kinds.get(data.get("kty"))
    if kind is None:
        msg = f"unsupported JWK kty {data.get('kty')!r}; use OKP or EC"
        raise ValueError(msg)
    try:
        return kind.import_key(dict(data))
    except (JoseError, ValueError, TypeError, KeyError) as error:
        msg = f"invalid JWK: {error}"
        raise ValueError(msg) from error


def generate_signing_key(algorithm: Algorithm = "Ed25519") -> SigningKey:
    """A fresh private key for ``algorithm``."""
    if algorithm == "Ed25519":
        return SigningKey(OKPKey.generate_key("Ed25519"))
    if algorithm == "ES256":
        return SigningKey(ECKey.generate_key("P-256"))
    msg = f"unsupported algorithm {algorithm!r}; use 'Ed25519' (RFC 9864 name for EdDSA) or 'ES256'"
    raise ValueError(msg)


def load_or_create(path: Path, *, algorithm: Algorithm = "Ed25519") -> SigningKey:
    """The signing key stored at ``path``, created there (PEM, mode 0600) when absent."""
    try:
        return SigningKey.from_pem(path.read_bytes())
    except FileNotFoundError:
        pass
    key = generate_signing_key(algorithm)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(key.to_pem())
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(tmp, path)  # atomic, never clobbers: a concurrent starter's key wins
        except FileExistsError:
            return SigningKey.from_pem(path.read_bytes())
    finally:
        os.unlink(tmp)
    return key


def sign(payload: Mapping[str, Any], key: SigningKey) -> bytes:
    """A compact JWS over the canonical (sorted-key) JSON of ``payload``."""
    body = orjson.dumps(dict(payload), option=orjson.OPT_SORT_KEYS)
    header = {"alg": key.algorithm, "kid": key.kid, "typ": TOKEN_TYPE}
    return jws.serialize_compact(header, body, key.jwk, registry=_REGISTRY).encode("ascii")


def verify(token: bytes | str, keys: VerifyingKey | Iterable[VerifyingKey]) -> dict[str, Any]:
    """The payload of ``token`` if one of ``keys`` signed it; else ``SignatureError``."""
    trusted = {k.kid: k for k in ([keys] if isinstance(keys, VerifyingKey) else keys)}
    try:
        raw = token.encode("ascii") if isinstance(token, str) else bytes(token)
        obj = jws.extract_compact(raw, registry=_REGISTRY)
        header = obj.headers()
    except (JoseError, ValueError, TypeError) as error:
        msg = f"malformed token: {error}"
        raise SignatureError(msg) from error
    if not isinstance(header, dict) or not set(header) <= HEADER_FIELDS:
        msg = f"malformed token: header must hold only {sorted(HEADER_FIELDS)}"
        raise SignatureError(msg)
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        msg = f"algorithm {alg!r} not accepted; only {sorted(ALGORITHMS)}"
        raise SignatureError(msg)
    if header.get("typ") != TOKEN_TYPE:
        msg = f"wrong token type {header.get('typ')!r}, expected {TOKEN_TYPE!r}"
        raise SignatureError(msg)
    key = trusted.get(kid) if isinstance(kid, str) else None
    if key is None:
        msg = f"unknown kid {kid!r}"
        raise SignatureError(msg)
    if key.algorithm != alg:
        msg = f"algorithm {alg!r} does not match key {kid} ({key.algorithm})"
        raise SignatureError(msg)
    try:
        valid = jws.validate_compact(obj, key.jwk, registry=_REGISTRY)
    except (JoseError, ValueError, TypeError) as error:
        msg = f"malformed token: {error}"
        raise SignatureError(msg) from error
    if not valid:
        msg = f"bad signature for kid {kid}"
        raise SignatureError(msg)
    try:
        payload = orjson.loads(obj.payload)
    except orjson.JSONDecodeError as error:
        msg = f"payload is not JSON: {error}"
        raise SignatureError(msg) from error
    if not isinstance(payload, dict):
        msg = f"payload is not a JSON object but {type(payload).__name__}"
        raise SignatureError(msg)
    return payload


def _ms_field(payload: Mapping[str, Any], name: str) -> int:
    value = payload.get(name)
    if type(value) is not int or value < 0:  # bool is an int subclass: refuse it too
        msg = f"{name} missing or not a non-negative integer of milliseconds: {value!r}"
        raise SignatureError(msg)
    return value


def check_validity(
    payload: Mapping[str, Any], now_ms: int, *, leeway_ms: int = DEFAULT_LEEWAY_MS
) -> None:
    """Refuse a payload not yet valid or expired at ``now_ms``, allowing ``leeway_ms`` skew."""
    issued_at, expires_at = _ms_field(payload, "issued_at"), _ms_field(payload, "expires_at")
    if expires_at < issued_at:
        msg = f"expires_at {expires_at} is before issued_at {issued_at}"
        raise SignatureError(msg)
    if issued_at > now_ms + leeway_ms:
        msg = f"not valid yet: issued_at {issued_at} is over {leeway_ms} ms after now {now_ms}"
        raise SignatureError(msg)
    if now_ms > expires_at + leeway_ms:
        msg = f"expired: expires_at {expires_at} is over {leeway_ms} ms before now {now_ms}"
        raise ExpiredError(msg)


def verify_envelope(
    token: bytes | str,
    keys: VerifyingKey | Iterable[VerifyingKey],
    *,
    now_ms: int,
    leeway_ms: int = DEFAULT_LEEWAY_MS,
) -> dict[str, Any]:
    """Verify a signed command or config and check its validity window; return the payload."""
    payload = verify(token, keys)
    check_validity(payload, now_ms, leeway_ms=leeway_ms)
    return payload
