"""The server's HTTP hardening: security headers, cookie rules and trusted proxies."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.middleware.sessions import SessionMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from core.settings import Settings
from webui.http.cookies import CookiePolicy
from webui.http.headers import SecurityHeaders

# NiceGUI's browser session (who is signed in, webui/signin.py): a fortnight, Starlette's
# default, written out so a reader sees it.
SESSION_MAX_AGE_S = 14 * 24 * 3600


def install(app: FastAPI, settings: Settings) -> None:
    """Wrap the app: trusted proxies outermost, then headers, cookies, NiceGUI's session.

    The session middleware is added here rather than by ``ui.run(storage_secret=…)`` so that
    the cookie policy sits outside it and sees its Set-Cookie; NiceGUI finds it and adds only
    its request tracking inside. ``add_middleware`` wraps what was added before, so the order
    below runs from the innermost layer out.
    """
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        max_age=SESSION_MAX_AGE_S,
        same_site="lax",  # strict would sign people out when they follow a link to the app
        https_only=False,  # CookiePolicy adds Secure per request, whenever it came over TLS
    )
    app.add_middleware(CookiePolicy)
    app.add_middleware(SecurityHeaders)
    if settings.trusted_proxies:
        # Only these peers' X-Forwarded-Proto/-For are believed: the scheme they report
        # decides HSTS and Secure cookies, the client address they report is the caller's.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
