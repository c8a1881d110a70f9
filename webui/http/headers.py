"""Security headers on every HTTP response: pages, API, static files and errors alike."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The tightest policy NiceGUI still works under (checked in Chromium, tests/e2e): its page
# template and ui.add_head_html use inline scripts, Vue compiles templates and
# ui.run_javascript evaluates code ('unsafe-eval'), Quasar and Tailwind inject styles, and
# ECharts draws through data: and blob: images. 'self' covers the same-origin socket.io
# websocket (CSP3), so no ws: wildcard lets a page talk to another host.
PAGE_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# Swagger UI and ReDoc come from this server (webui/api_docs.py), so their pages need no
# other host either; they differ from the pages' policy only where the two bundles do: their
# pages start them with inline scripts and no eval, Swagger UI draws icons as data: images,
# and ReDoc runs a blob: worker.
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
DOCS_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
# One year, the value preload lists ask for; no includeSubDomains, since other hosts under
# the same domain are not ours to force onto HTTPS.
HSTS = "max-age=31536000"
COMMON = {
    "X-Content-Type-Options": "nosniff",  # a JSON or CSV answer is never run as a script
    # The full URL to our own pages, nothing to other sites; unlike no-referrer this keeps the
    # Origin header on same-origin POSTs, which origin checks rely on.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP level 2
}


class SecurityHeaders:
    """Adds CSP, nosniff, Referrer-Policy, X-Frame-Options and, over TLS, HSTS.

    HSTS goes out only when the request came over TLS (``scope["scheme"]``, which a trusted
    proxy's X-Forwarded-Proto may have set): browsers ignore it over plain HTTP, and a
    development server on http://localhost must not pin itself to HTTPS. A header a route set
    itself is kept.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, adding the headers to the response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = dict(COMMON)
        added["Content-Security-Policy"] = (
            DOCS_POLICY if scope["path"] in DOCS_PATHS else PAGE_POLICY
        )
        if scope["scheme"] == "https":
            added["Strict-Transport-Security"] = HSTS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in added.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
