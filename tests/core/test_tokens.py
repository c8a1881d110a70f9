"""Access tokens: only a fresh, untampered access token signed with our secret is accepted."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from core.tokens import (
    AccessClaims,
    InvalidTokenError,
    issue_access_token,
    new_refresh_token,
    read_access_token,
    refresh_token_digest,
)

SECRET = "s" * 40
NOW = datetime(2030, 1, 1, tzinfo=UTC)
USER, SESSION = uuid.uuid4(), uuid.uuid4()


def _token(*, secret: str = SECRET, ttl: timedelta = timedelta(minutes=15)) -> str:
    return issue_access_token(secret=secret, user_id=USER, session_id=SESSION, now=NOW, ttl=ttl)


def test_a_fresh_token_reads_back() -> None:
    """User, session and expiry come back as issued."""
    claims = read_access_token(_token(), secret=SECRET, now=NOW + timedelta(minutes=14))
    assert claims == AccessClaims(USER, SESSION, int((NOW + timedelta(minutes=15)).timestamp()))


def test_expired_token_is_rejected() -> None:
    """One second past expiry is too late."""
    with pytest.raises(InvalidTokenError):
        read_access_token(_token(), secret=SECRET, now=NOW + timedelta(minutes=15, seconds=1))


def test_wrong_secret_is_rejected() -> None:
    """A token signed with another key is refused."""
    with pytest.raises(InvalidTokenError):
        read_access_token(_token(secret="t" * 40), secret=SECRET, now=NOW)


def test_tampered_payload_is_rejected() -> None:
    """Swapping the user in the payload breaks the signature."""
    header, payload, signature = _token().split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = str(uuid.uuid4())
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidTokenError):
        read_access_token(f"{header}.{forged}.{signature}", secret=SECRET, now=NOW)


@pytest.mark.parametrize("typ", ["refresh", None])
def test_wrong_kind_of_token_is_rejected(typ: str | None) -> None:
    """A correctly signed token that is not an access token is refused."""
    claims = {"iss": "precisionpulse", "sub": str(USER), "sid": str(SESSION)}
    claims |= {"exp": int(NOW.timestamp()) + 60} | ({"typ": typ} if typ else {})
    token = jwt.encode({"alg": "HS256"}, claims, OctKey.import_key(SECRET))
    with pytest.raises(InvalidTokenError):
        read_access_token(token, secret=SECRET, now=NOW)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "eyJhbGciOiJub25lIn0.e30."])
def test_garbage_is_rejected(garbage: str) -> None:
    """Anything that is not a JWT raises InvalidTokenError, nothing else."""
    with pytest.raises(InvalidTokenError):
        read_access_token(garbage, secret=SECRET, now=NOW)


def test_refresh_tokens_are_random_and_stored_as_digests() -> None:
    """Two refresh tokens differ; the digest is a stable SHA-256 that hides the token."""
    first, second = new_refresh_token(), new_refresh_token()
    assert first != second
    digest = refresh_token_digest(first)
    assert digest == refresh_token_digest(first) and len(digest) == 64 and first not in digest
