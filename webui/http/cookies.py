"""Cookie rules for every response: none for machines, Secure ones over TLS."""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def is_machine_path(path: str) -> bool:
    """Whether ``path`` answers programs (the API, metrics), which carry tokens, not cookies."""
    return path.startswith("/api/") or path == "/metrics"


def _secure(cookie: str) -> str:
    attributes = {part.strip().split("=", 1)[0].lower() for part in cookie.split(";")[1:]}
    return cookie if "secure" in attributes else f"{cookie}; Secure"


class CookiePolicy:
    """Drops Set-Cookie on machine paths and marks every cookie Secure over TLS.

    NiceGUI's session middleware gives every response a session cookie, the API's included;
    an API client never sends it back, and a cookie it holds would only be a credential to
    leak. Starlette's ``https_only`` is fixed when the app is built, but one server may be
    reached both over TLS and plainly (a trusted proxy in front, a health check behind it),
    so the decision is made per request from ``scope["scheme"]``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, rewriting the response's cookies."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        strip = is_machine_path(scope["path"])
        secure = scope["scheme"] == "https"

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start" and (strip or secure):
                headers = MutableHeaders(scope=message)
                cookies = headers.getlist("set-cookie")
                del headers["set-cookie"]
                if not strip:
                    for cookie in cookies:
                        headers.append("set-cookie", _secure(cookie))
            await send(message)

        await self.app(scope, receive, send_with_cookies)
