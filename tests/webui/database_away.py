"""A PostgreSQL that is away, for the server to meet: nothing listening, or starting up."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from core.settings import Settings

KINDS = ("refused", "starting-up")
STARTING_UP = "57P03"  # cannot_connect_now: "the database system is starting up"
# The two requests a client may send before its startup message (PostgreSQL protocol 3):
# SSL and GSSAPI encryption, each answered 'N' (not offered) by a server without them.
_ENCRYPTION_REQUESTS = {80877103, 80877104}


def free_port() -> int:
    """A loopback port nobody listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _error_response(sqlstate: str, message: str) -> bytes:
    """A PostgreSQL ErrorResponse message, FATAL, with ``sqlstate`` and ``message``."""
    fields = b"".join(
        code + value.encode() + b"\0"
        for code, value in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", sqlstate), (b"M", message))
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!i", len(body) + 4) + body


async def _starting_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer a client's startup as a PostgreSQL that is starting up does, then hang up."""
    try:
        while True:
            length = struct.unpack("!i", await reader.readexactly(4))[0]
            payload = await reader.readexactly(length - 4)
            if struct.unpack("!i", payload[:4])[0] not in _ENCRYPTION_REQUESTS:
                break  # the startup message itself
            writer.write(b"N")
        writer.write(_error_response(STARTING_UP, "the database system is starting up"))
        await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        writer.close()


@asynccontextmanager
async def away_settings(kind: str, tmp_path: Path) -> AsyncIterator[Settings]:
    """Server settings whose PostgreSQL refuses connections (``refused``), or answers each
    with "the database system is starting up" (``starting-up``, asyncpg's
    CannotConnectNowError)."""
    if kind == "refused":
        yield _settings(f"postgresql://root@127.0.0.1:{free_port()}/test", tmp_path)
        return
    server = await asyncio.start_server(_starting_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield _settings(f"postgresql://root@127.0.0.1:{port}/test", tmp_path)


def _settings(url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=url,
        mqtt_url="",
        signing_key_file=tmp_path / "keys" / "server-signing-key.pem",
    )
