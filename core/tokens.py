"""Access tokens (JWT, HS256 through joserfc) and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

ALGORITHM = "HS256"
ISSUER = "precisionpulse"


class InvalidTokenError(Exception):
    """The token is malformed, forged, of the wrong kind or expired."""


@dataclass(frozen=True)
class AccessClaims:
    """What an access token says: who, in which sign-in session, until when."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    expires_at: int


def issue_access_token(
    *, secret: str, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime, ttl: timedelta
) -> str:
    """A signed, short-lived access token."""
    claims = {
        "iss": ISSUER,
        "sub": str(user_id),
        "sid": str(session_id),
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode({"alg": ALGORITHM}, claims, OctKey.import_key(secret))


def read_access_token(token: str, *, secret: str, now: datetime) -> AccessClaims:
    """Verify signature, kind and expiry, and return the claims."""
    try:
        decoded = jwt.decode(token, OctKey.import_key(secret), algorithms=[ALGORITHM])
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            now=int(now.timestamp()),
            leeway=0,
            iss={"essential": True, "value": ISSUER},
            exp={"essential": True},
            sub={"essential": True},
        )
        registry.validate(claims)
        if claims.get("typ") != "access":
            msg = "not an access token"
            raise InvalidTokenError(msg)
        return AccessClaims(uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"]), claims["exp"])
    except (JoseError, ValueError, KeyError, TypeError) as error:
        raise InvalidTokenError(str(error)) from error


def new_refresh_token() -> str:
    """An opaque random refresh token."""
    return secrets.token_urlsafe(32)


def refresh_token_digest(token: str) -> str:
    """What is stored of a refresh token: its SHA-256, so a database leak gives no tokens."""
    return hashlib.sha256(token.encode()).hexdigest()
