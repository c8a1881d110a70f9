"""Whether an error means the database is away (down, starting up, unreachable), not wrong.

The rule, applied to the error and everything it wraps (SQLAlchemy's ``orig``, then each
``__cause__`` and ``__context__``):

- a connection SQLAlchemy saw break (``connection_invalidated``), or a pool with no
  connection to lend in time: away;
- a PostgreSQL error whose SQLSTATE says the server takes no work now (``08…`` connection
  exception, ``57P01``-``57P03`` shut down or starting up, ``53300`` too many connections):
  away;
- a socket that could not reach the server (refused, reset, timed out, no route, no such
  host, or asyncio's one error for several addresses that all failed): away;
- anything else, constraint violations and errors in the SQL among them: not away. Those
  are the request's or the code's fault, and waiting will not cure them.
"""

from __future__ import annotations

import errno
import logging
import socket
import sys

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLSTATEs of a server that cannot take this work now but may soon: connection exceptions
# (the whole class), admin/crash shutdown and "the database system is starting up" (asyncpg's
# CannotConnectNowError), and a full connection table.
_AWAY_SQLSTATE_CLASSES = ("08",)
_AWAY_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})
# errnos of a socket that never reached a server, or lost it.
_AWAY_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EHOSTDOWN,
        errno.ENETDOWN,
    }
)
# asyncio.create_connection's error when every address of a host failed (``localhost`` is
# ::1 and 127.0.0.1): a bare OSError with no errno, only these words.
_ALL_ADDRESSES_FAILED = "Multiple exceptions: "
_MAX_DEPTH = 8  # wrappers seen: SQLAlchemy's error, the dialect's, the driver's, the socket's


def database_unavailable(error: BaseException) -> bool:
    """True when ``error`` (or what it wraps) says the database is away, by the rule above."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending and len(seen) < _MAX_DEPTH:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if _away(current):
            return True
        orig = getattr(current, "orig", None)
        for wrapped in (current.__context__, current.__cause__, orig):
            if isinstance(wrapped, BaseException):
                pending.append(wrapped)
    return False


def log_failure(log: logging.Logger, message: str, *args: object) -> None:
    """Log the error being handled (call it in an ``except`` block) as a background round's
    failure: one warning line naming the cause when the database is away, the traceback
    otherwise. A loop retrying through an outage fails alike every round, and a traceback
    a round buries the line that says why; a fault of the code still gets its stack."""
    error = sys.exc_info()[1]
    if error is None or not database_unavailable(error):
        log.exception(message, *args)
        return
    log.warning(
        "%s: database unavailable (%s)", message % args if args else message, describe(error)
    )


def describe(error: BaseException) -> str:
    """The error's kind and the first line of its words, for a one-line log entry."""
    words = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {words}" if words else type(error).__name__


def _away(error: BaseException) -> bool:
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, PoolTimeout):
        return True
    sqlstate = getattr(error, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        return sqlstate in _AWAY_SQLSTATES or sqlstate.startswith(_AWAY_SQLSTATE_CLASSES)
    if isinstance(error, ConnectionError | TimeoutError | socket.gaierror):
        return True
    if isinstance(error, OSError):
        if error.errno in _AWAY_ERRNOS:
            return True
        return error.errno is None and str(error).startswith(_ALL_ADDRESSES_FAILED)
    return False
