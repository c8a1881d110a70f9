"""A ceiling on request bodies, enforced before they are read (pure ASGI)."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """Answer 413 to a request whose body passes ``max_bytes``, without buffering it.

    A declared ``Content-Length`` past the limit is refused before the app runs and before a
    byte of the body is read. A body without one (chunked), or longer than it claimed, is
    counted as the app pulls it: the chunk that crosses the limit gets the 413 sent at once,
    and the app hears that the client left, so it reads nothing more. The server (uvicorn)
    reads only as fast as the app pulls, and closes a connection whose body was left unread.
    WebSocket and lifespan traffic pass untouched.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        if max_bytes <= 0:
            msg = f"max_bytes must be positive, not {max_bytes}"
            raise ValueError(msg)
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with a counting ``receive``, or refuse it outright."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _refuse(send, self.max_bytes)
            return
        await _Guard(self, receive, send).run(scope)


class _Guard:
    """One request's count of body bytes, and whether the limit has answered for it."""

    def __init__(self, limit: BodyLimit, receive: Receive, send: Send) -> None:
        self._limit = limit
        self._receive = receive
        self._send = send
        self._received = 0
        self._started = False
        self._refused = False

    async def run(self, scope: Scope) -> None:
        try:
            await self._limit.app(scope, self.receive, self.send)
        except Exception:
            # After a 413 the app fails on the body it was denied; that is no error of ours.
            if not self._refused:
                raise

    async def receive(self) -> Message:
        if self._refused:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] != "http.request":
            return message
        self._received += len(message.get("body", b""))
        if self._received <= self._limit.max_bytes:
            return message
        self._refused = True
        if not self._started:  # else the answer is under way: closing is all there is
            await _refuse(self._send, self._limit.max_bytes)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self._refused:
            return  # the 413 answered this request; what the app says after it goes nowhere
        if message["type"] == "http.response.start":
            self._started = True
        await self._send(message)


async def _refuse(send: Send, max_bytes: int) -> None:
    """The 413, in the API's error shape (``{"detail": …}``)."""
    reason = f"the request body is larger than the server accepts ({max_bytes} bytes)"
    body = json.dumps({"detail": reason}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),  # the unread rest of the body is not wanted
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    """The declared body size, or None when absent or malformed (then only counting applies)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
