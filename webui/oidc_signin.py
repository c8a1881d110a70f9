"""/auth/oidc/start and /auth/oidc/callback: signing in through the OpenID Connect provider.

Plain HTTP routes, as the provider sends the browser back with a redirect. What the
callback must match (state, nonce, PKCE verifier, where to go next) is kept in this
browser's server-side storage, never in a URL or a readable cookie, and is used once:
a callback whose state this browser did not start is refused, which is the CSRF check.
Every refusal is audited and said in words on the sign-in page.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import RedirectResponse
from nicegui import app

from core.oidc import Identity, OidcError, Pending, Provider, safe_next
from core.services import oidc_accounts
from webui import signin
from webui.services import Services

START = "/auth/oidc/start"
CALLBACK = "/auth/oidc/callback"
CALLBACK_NAME = "oidc_callback"
PENDING_KEY = "oidc_pending"  # state -> Pending.to_dict(), in the browser's user storage
ERROR_KEY = "oidc_error"  # why the last provider sign-in failed; the sign-in page says it once
NextDep = Annotated[str, Query(alias="next", description="Where to go once signed in")]
# The error codes of RFC 6749 §4.1.2.1 and OpenID Connect Core §3.1.2.6.
ERROR_CODES = frozenset(
    {
        "invalid_request",
        "unauthorized_client",
        "access_denied",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
        "invalid_request_uri",
        "invalid_request_object",
        "request_not_supported",
        "request_uri_not_supported",
        "registration_not_supported",
    }
)
# Sign-ins started at once in this browser's tabs; an older one than these is dropped.
MAX_PENDING = 5


def install(services: Services) -> None:
    """Register the two routes when a provider is configured."""
    settings = services.settings
    provider = Provider(settings)

    @app.get(START, include_in_schema=False)
    async def start(request: Request, after: NextDep = "/") -> RedirectResponse:
        try:
            url, pending = await provider.begin(
                redirect_uri=_callback_url(request, settings.oidc_redirect_uri),
                next_path=safe_next(after),
            )
        except OidcError as error:
            return await _refuse(services, error, None)
        _keep(pending)
        return RedirectResponse(url, status_code=303)

    @app.get(CALLBACK, include_in_schema=False, name=CALLBACK_NAME)
    async def callback(request: Request) -> RedirectResponse:
        params = dict(request.query_params)
        pending = _take(params.get("state", ""))
        if pending is None and params.get("error") in ERROR_CODES:
            # Some providers leave the state out of an error: its code alone is said, from
            # a fixed list, so a crafted link cannot put words of its own on the page.
            msg = f"the sign-in provider refused ({params['error']})"
            return await _refuse(services, OidcError(msg, reason="provider_error"), None)
        if pending is None:
            msg = "this sign-in was not started in this browser (or was used already): try again"
            return await _refuse(services, OidcError(msg, reason="state_mismatch"), None)
        if pending.expired(time.time()):
            msg = "the sign-in took too long at the provider: try again"
            return await _refuse(services, OidcError(msg, reason="expired"), None)
        identity: Identity | None = None
        try:
            identity = await provider.finish(
                pending,
                redirect_uri=_callback_url(request, settings.oidc_redirect_uri),
                params=params,
            )
            pair = await oidc_accounts.sign_in(
                services.database, settings=settings, identity=identity
            )
        except OidcError as error:
            if identity is not None:  # refused after the provider's checks: audited already
                return _back_to_login(error.message)
            return await _refuse(services, error, None)
        signin.remember(pair.session_id)
        return RedirectResponse(pending.next_path, status_code=303)


def _callback_url(request: Request, configured: str) -> str:
    """The redirect URI registered with the provider: as configured, or this server's own."""
    return configured or str(request.url_for(CALLBACK_NAME))


def _keep(pending: Pending) -> None:
    kept: dict[str, Any] = dict(app.storage.user.get(PENDING_KEY) or {})
    kept[pending.state] = pending.to_dict()
    newest = sorted(kept.values(), key=lambda p: float(p["started"]))[-MAX_PENDING:]
    app.storage.user[PENDING_KEY] = {p["state"]: p for p in newest}


def _take(state: str) -> Pending | None:
    """The pending sign-in with this state, forgotten as it is taken (a state is used once)."""
    kept: dict[str, Any] = dict(app.storage.user.get(PENDING_KEY) or {})
    found = kept.pop(state, None) if state else None
    app.storage.user[PENDING_KEY] = kept
    return Pending.from_dict(found) if isinstance(found, dict) else None


async def _refuse(
    services: Services, error: OidcError, identity: Identity | None
) -> RedirectResponse:
    await oidc_accounts.refused(services.database, error=error, identity=identity)
    return _back_to_login(error.message)


def _back_to_login(message: str) -> RedirectResponse:
    app.storage.user[ERROR_KEY] = message
    return RedirectResponse("/login", status_code=303)


def take_error() -> str | None:
    """Why this browser's last provider sign-in failed, said once (None: it did not)."""
    message = app.storage.user.pop(ERROR_KEY, None)
    return str(message) if message else None
