"""Which errors say the database is away (503, "did not answer"), and which are faults."""

from __future__ import annotations

import errno
import logging

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from core.db.availability import database_unavailable, log_failure


def _wrapped(driver_error: Exception, kind: type[DBAPIError] = DBAPIError) -> DBAPIError:
    """``driver_error`` as SQLAlchemy hands it on: wrapped, with the driver's as its cause."""
    try:
        try:
            raise driver_error
        except Exception as error:
            raise kind("SELECT 1", {}, error) from error
    except DBAPIError as wrapped:
        return wrapped


def _invalidated() -> DBAPIError:
    closed = Exception("connection was closed")
    return DBAPIError("SELECT 1", {}, closed, connection_invalidated=True)


AWAY = {
    "refused": ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"),
    "refused, as asyncpg raises it": OSError(errno.ECONNREFUSED, "Connect call failed"),
    "every address refused": OSError("Multiple exceptions: [Errno 111] Connect call failed"),
    "no such host": OSError(errno.EHOSTUNREACH, "No route to host"),
    "connect timed out": TimeoutError(),
    "starting up": asyncpg.CannotConnectNowError("the database system is starting up"),
    "starting up, wrapped": _wrapped(asyncpg.CannotConnectNowError("starting up")),
    "shutting down, wrapped": _wrapped(asyncpg.AdminShutdownError("terminating"), OperationalError),
    "connection lost, wrapped": _wrapped(asyncpg.ConnectionDoesNotExistError("closed")),
    "too many connections": _wrapped(asyncpg.TooManyConnectionsError("sorry, too many")),
    "refused, wrapped": OperationalError("SELECT 1", {}, ConnectionRefusedError("refused")),
    "connection invalidated": _invalidated(),
    "pool exhausted": PoolTimeout("QueuePool limit reached"),
}
FAULTS = {
    "unique violation": _wrapped(asyncpg.UniqueViolationError("duplicate key"), IntegrityError),
    "no such table": _wrapped(asyncpg.UndefinedTableError("no such table"), ProgrammingError),
    "query cancelled": _wrapped(asyncpg.QueryCanceledError("statement timeout")),
    "another operation": _wrapped(asyncpg.InterfaceError("another operation is in progress")),
    "missing file": FileNotFoundError(errno.ENOENT, "No such file", "fonts/DejaVuSans.ttf"),
    "bad value": ValueError("not a number"),
}


@pytest.mark.parametrize("error", AWAY.values(), ids=AWAY.keys())
def test_an_outage_is_unavailable(error: Exception) -> None:
    assert database_unavailable(error)


@pytest.mark.parametrize("error", FAULTS.values(), ids=FAULTS.keys())
def test_a_fault_is_not(error: Exception) -> None:
    assert not database_unavailable(error)


def _log_while_handling(error: Exception) -> None:
    try:
        raise error
    except Exception:
        log_failure(logging.getLogger("pp.test.rounds"), "sweep failed; again in %s s", 5)


def test_a_round_failing_in_an_outage_logs_one_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="pp.test.rounds"):
        _log_while_handling(_wrapped(asyncpg.CannotConnectNowError("starting up\nDETAIL: x")))
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.exc_info is None
    assert record.getMessage() == (
        "sweep failed; again in 5 s: database unavailable (DBAPIError: "
        "(asyncpg.exceptions.CannotConnectNowError) starting up)"
    )


def test_a_round_failing_on_a_fault_keeps_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="pp.test.rounds"):
        _log_while_handling(FAULTS["no such table"])
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert record.getMessage() == "sweep failed; again in 5 s"
