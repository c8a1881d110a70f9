"""Sign-in through an OpenID Connect provider: the authorization code flow's two legs.

``begin`` makes the provider's authorization URL with a fresh state, nonce and PKCE (S256)
verifier, which the caller keeps server-side (``Pending``); ``finish`` exchanges the code
the provider sent back and checks the ID token: signed by a key of the provider's JWKS
(asymmetric algorithms only), for this client (``aud``, ``azp``), from this issuer, with
the nonce of this sign-in, and not expired. The request and token bodies are Authlib's
(RFC 6749, RFC 7636); the JWT checks are joserfc's, which Authlib itself now defers to.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import quote

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from core.errors import AuthError
from core.settings import Settings

# RFC 6749 §4.1.2 recommends codes live at most 10 minutes: a sign-in left open longer
# than that is stale, and its state is refused as expired.
PENDING_TTL_S = 600
# A provider that takes longer than this to answer one request is as good as down.
HTTP_TIMEOUT_S = 10.0
# The provider's clock and ours may differ by this much when checking iat and exp.
CLOCK_LEEWAY_S = 60
# Keys the provider publishes: a symmetric (HS*) ID token would be signed with the client
# secret, which the server holds too, so it would prove nothing about who signed it.
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
# Discovery documents change when the provider is reconfigured: read again after an hour.
DISCOVERY_TTL_S = 3600
# 43 to 128 characters (RFC 7636 §4.1); state and nonce as long, unguessable alike.
TOKEN_LENGTH = 48


class OidcError(AuthError):
    """The provider's sign-in did not go through; ``reason`` is a short code for the audit log."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Pending:
    """One sign-in under way: what the callback must match, kept by the server only."""

    state: str
    nonce: str
    verifier: str
    next_path: str
    started: float

    def expired(self, now: float) -> bool:
        """Whether the person took longer than ``PENDING_TTL_S`` at the provider."""
        return now - self.started > PENDING_TTL_S

    def to_dict(self) -> dict[str, Any]:
        """Plain values, for a JSON store."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Pending:
        """The pending sign-in ``to_dict`` wrote."""
        return cls(
            state=str(values["state"]),
            nonce=str(values["nonce"]),
            verifier=str(values["verifier"]),
            next_path=str(values["next_path"]),
            started=float(values["started"]),
        )


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in, and the roles its claim names."""

    issuer: str
    subject: str
    username: str
    display_name: str
    email: str
    roles: tuple[str, ...]


class Provider:
    """The configured provider as a client of it sees it: discovery, then the two legs."""

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None):
        self._settings = settings
        self._transport = transport
        self._metadata: dict[str, Any] | None = None
        self._read_at = 0.0

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=HTTP_TIMEOUT_S, transport=self._transport)

    async def _get_json(self, client: httpx.AsyncClient, url: str, **kwargs: Any) -> Any:
        try:
            response = await client.get(url, **kwargs)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as error:
            msg = f"the sign-in provider could not be reached ({type(error).__name__})"
            raise OidcError(msg, reason="provider_unreachable") from error

    async def metadata(self, client: httpx.AsyncClient) -> dict[str, Any]:
        """The provider's discovery document, checked to name the configured issuer."""
        if self._metadata is None or time.monotonic() - self._read_at > DISCOVERY_TTL_S:
            issuer = self._settings.oidc_issuer
            found = await self._get_json(
                client, f"{issuer.rstrip('/')}/.well-known/openid-configuration"
            )
            needed = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
            if not isinstance(found, dict) or any(not found.get(k) for k in needed):
                msg = "the sign-in provider's discovery document is incomplete"
                raise OidcError(msg, reason="provider_misconfigured")
            if str(found["issuer"]).rstrip("/") != issuer.rstrip("/"):
                msg = f"the provider calls itself {found['issuer']!r}, not {issuer!r}"
                raise OidcError(msg, reason="provider_misconfigured")
            self._metadata, self._read_at = found, time.monotonic()
        return self._metadata

    async def begin(self, *, redirect_uri: str, next_path: str) -> tuple[str, Pending]:
        """The provider's authorization URL to send the browser to, and what to keep."""
        async with self._client() as client:
            metadata = await self.metadata(client)
        pending = Pending(
            state=generate_token(TOKEN_LENGTH),
            nonce=generate_token(TOKEN_LENGTH),
            verifier=generate_token(TOKEN_LENGTH),
            next_path=next_path,
            started=time.time(),
        )
        url = prepare_grant_uri(
            metadata["authorization_endpoint"],
            self._settings.oidc_client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=self._settings.oidc_scopes,
            state=pending.state,
            nonce=pending.nonce,
            code_challenge=create_s256_code_challenge(pending.verifier),
            code_challenge_method="S256",
        )
        return url, pending

    async def finish(
        self, pending: Pending, *, redirect_uri: str, params: Mapping[str, str]
    ) -> Identity:
        """Exchange the callback's code and check the ID token: who signed in, or OidcError.

        The caller has matched ``params["state"]`` to ``pending`` already.
        """
        if "error" in params:
            said = params.get("error_description") or params["error"]
            msg = f"the sign-in provider refused: {said}"
            raise OidcError(msg[:300], reason="provider_error")
        code = params.get("code")
        if not code:
            raise OidcError("the provider sent no authorization code", reason="no_code")
        async with self._client() as client:
            metadata = await self.metadata(client)
            tokens = await self._exchange(client, metadata, code, redirect_uri, pending)
            keys = await self._get_json(client, metadata["jwks_uri"])
            claims = self._check_id_token(metadata, tokens, keys, pending)
            claim = self._settings.oidc_role_claim
            if _lookup(claims, claim) is None and metadata.get("userinfo_endpoint"):
                claims = {**await self._userinfo(client, metadata, tokens), **claims}
        return identity_of(claims, role_claim=claim)

    async def _exchange(
        self,
        client: httpx.AsyncClient,
        metadata: Mapping[str, Any],
        code: str,
        redirect_uri: str,
        pending: Pending,
    ) -> dict[str, Any]:
        settings = self._settings
        secret = settings.oidc_client_secret
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=pending.verifier,
            client_id=None if secret else settings.oidc_client_id,  # a public client says who
        )
        # client_secret_basic, which every provider takes (OIDC Core §9), form-encoded first
        # as RFC 6749 §2.3.1 asks, so a secret with ':' or '%' in it reaches the provider whole.
        basic = httpx.BasicAuth(quote(settings.oidc_client_id, safe=""), quote(secret, safe=""))
        auth = basic if secret else httpx.USE_CLIENT_DEFAULT
        try:
            response = await client.post(
                metadata["token_endpoint"],
                content=body,
                auth=auth,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        except httpx.HTTPError as error:
            msg = f"the sign-in provider could not be reached ({type(error).__name__})"
            raise OidcError(msg, reason="provider_unreachable") from error
        try:
            tokens = response.json()
        except ValueError:
            tokens = {}
        if response.status_code != httpx.codes.OK or not isinstance(tokens, dict):
            said = tokens.get("error") if isinstance(tokens, dict) else None
            msg = f"the sign-in provider did not accept the code ({said or response.status_code})"
            raise OidcError(msg, reason="code_refused")
        if not isinstance(tokens.get("id_token"), str):
            raise OidcError("the sign-in provider sent no ID token", reason="no_id_token")
        return tokens

    def _check_id_token(
        self,
        metadata: Mapping[str, Any],
        tokens: Mapping[str, Any],
        keys: Any,
        pending: Pending,
    ) -> dict[str, Any]:
        client_id = self._settings.oidc_client_id
        offered = metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [a for a in offered if a in ASYMMETRIC]
        try:
            decoded = jwt.decode(tokens["id_token"], KeySet.import_key_set(keys), algorithms)
            claims = dict(decoded.claims)
            jwt.JWTClaimsRegistry(
                now=int(time.time()),
                leeway=CLOCK_LEEWAY_S,
                iss={"essential": True, "value": metadata["issuer"]},
                aud={"essential": True, "value": client_id},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": pending.nonce},
            ).validate(claims)
        except (JoseError, ValueError, TypeError, KeyError) as error:
            msg = f"the ID token was refused: {error}"
            raise OidcError(msg[:300], reason="id_token_invalid") from error
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != client_id:  # OIDC Core §3.1.3.7
            raise OidcError("the ID token was issued to another client", reason="id_token_invalid")
        return claims

    async def _userinfo(
        self, client: httpx.AsyncClient, metadata: Mapping[str, Any], tokens: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The userinfo endpoint's claims, for providers that keep roles out of the ID token."""
        access = tokens.get("access_token")
        if not isinstance(access, str):
            return {}
        headers = {"Authorization": f"Bearer {access}"}
        found = await self._get_json(client, metadata["userinfo_endpoint"], headers=headers)
        return {k: v for k, v in found.items() if k != "sub"} if isinstance(found, dict) else {}


def _lookup(claims: Mapping[str, Any], path: str) -> Any:
    """The claim at a dotted ``path`` (``realm_access.roles``), or None."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def identity_of(claims: Mapping[str, Any], *, role_claim: str) -> Identity:
    """Who checked ``claims`` name, with the roles at ``role_claim`` (a list, or one name)."""
    roles = _lookup(claims, role_claim)
    if isinstance(roles, str):
        roles = roles.split()  # one role, or several space-separated like scope
    if not isinstance(roles, list):
        roles = []
    return Identity(
        issuer=str(claims["iss"]),
        subject=str(claims["sub"]),
        username=str(claims.get("preferred_username") or claims.get("email") or ""),
        display_name=str(claims.get("name") or "")[:128],
        email=str(claims.get("email") or ""),
        roles=tuple(dict.fromkeys(str(r) for r in roles)),
    )


def safe_next(path: str | None) -> str:
    """A path on this server to go to after sign-in; anything else (another site) is '/'."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    if any(ord(c) < 0x20 for c in path):  # a header split or a browser's lenient parse
        return "/"
    return path
