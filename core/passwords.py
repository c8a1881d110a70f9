"""Password hashing (argon2 through libpass) and device credential formats."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from passlib.context import CryptContext

_context = CryptContext(schemes=["argon2"], deprecated="auto")
# Verified against when a username is unknown, so the answer takes as long either way.
_DUMMY_HASH = _context.hash(secrets.token_urlsafe(16))
MIN_PASSWORD_LENGTH = 8  # NIST SP 800-63B minimum for user-chosen secrets


def hash_password(password: str) -> str:
    """An argon2 hash of ``password``."""
    return _context.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Whether ``password`` matches; spends the same effort when there is no hash.

    An empty hash is none: an account that signs in through a provider has no password.
    """
    if not password_hash:
        _context.verify(password, _DUMMY_HASH)
        return False
    return _context.verify(password, password_hash)


# Mosquitto's mosquitto_passwd writes PBKDF2-SHA512 as $7$iterations$salt$hash.
MOSQUITTO_ITERATIONS = 101
MOSQUITTO_SALT_BYTES = 12


def mosquitto_hash(password: str, *, salt: bytes | None = None) -> str:
    """A password hash in Mosquitto's own password-file format."""
    salt = salt or secrets.token_bytes(MOSQUITTO_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, MOSQUITTO_ITERATIONS)
    encoded_salt, encoded_digest = (
        base64.b64encode(salt).decode(),
        base64.b64encode(digest).decode(),
    )
    return f"$7${MOSQUITTO_ITERATIONS}${encoded_salt}${encoded_digest}"


def verify_mosquitto_hash(password: str, encoded: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash."""
    try:
        _, kind, iterations, salt, digest = encoded.split("$")
        if kind != "7":
            return False
        actual = hashlib.pbkdf2_hmac(
            "sha512", password.encode(), base64.b64decode(salt), int(iterations)
        )
        return hmac.compare_digest(actual, base64.b64decode(digest))
    except ValueError:  # a malformed hash (binascii.Error is a ValueError) matches nothing
        return False


def new_device_secret() -> str:
    """A random MQTT password for a new device."""
    return secrets.token_urlsafe(24)
