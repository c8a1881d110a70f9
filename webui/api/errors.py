"""Domain errors → HTTP answers with a reason, never a 500; and the one shape they all take."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from core.db.availability import database_unavailable, describe
from core.errors import (
    AuthError,
    BusyError,
    ConflictError,
    DomainError,
    ForbiddenError,
    InvalidError,
    LockedError,
    NotFoundError,
    PreconditionRequiredError,
    UnavailableError,
)

_STATUS: list[tuple[type[DomainError], int]] = [
    (LockedError, status.HTTP_429_TOO_MANY_REQUESTS),
    (BusyError, status.HTTP_429_TOO_MANY_REQUESTS),
    (AuthError, status.HTTP_401_UNAUTHORIZED),
    (NotFoundError, status.HTTP_404_NOT_FOUND),
    (ConflictError, status.HTTP_409_CONFLICT),
    (ForbiddenError, status.HTTP_403_FORBIDDEN),
    (InvalidError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (PreconditionRequiredError, status.HTTP_428_PRECONDITION_REQUIRED),
    (UnavailableError, status.HTTP_503_SERVICE_UNAVAILABLE),
]
# How soon a client may ask again while the database is away: PostgreSQL starting up or
# recovering takes seconds, and the pool pings before lending, so the next request after it
# answers again gets through.
DATABASE_RETRY_AFTER_S = 5
DATABASE_AWAY = "the database is not answering (starting up or unreachable); ask again shortly"
# What may carry a database outage out of a handler: SQLAlchemy's errors, the driver's raised
# unwrapped (asyncpg while connecting), the socket's. database_unavailable decides which of
# them are one; the others stay the 500s they were.
_MAYBE_AWAY: tuple[type[Exception], ...] = (
    DBAPIError,
    PoolTimeout,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    OSError,
)
log = logging.getLogger(__name__)
# Pydantic's words for text that is not Unicode (a lone UTF-16 surrogate in the JSON) say
# nothing a client can act on.
_NOT_UNICODE = "must be Unicode text: a lone UTF-16 surrogate (\\ud800-\\udfff) is not"


class ErrorOut(BaseModel):
    """A refused request: the reason, and the field it blames when there is one."""

    detail: str = Field(description="What was wrong, for a person to read")
    field: str | None = Field(default=None, description="The field to blame, when one is")


class FieldErrorOut(BaseModel):
    """One reason a request's fields were refused (FastAPI's validation error)."""

    model_config = ConfigDict(extra="allow")

    loc: list[str | int] = Field(description="Where: body, query, path or header, then names")
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class FieldErrorsOut(BaseModel):
    """A request whose fields do not fit the operation, one entry per fault."""

    detail: list[FieldErrorOut]


# Every /api/v1 operation may answer these: documented, so clients (and schemathesis) know
# the one shape a refusal takes.
RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorOut, "description": "Refused, with the reason"},
    status.HTTP_422_UNPROCESSABLE_CONTENT: {
        "model": FieldErrorsOut | ErrorOut,
        "description": "A field is malformed (a list naming each) or its value refused",
    },
}


def _printable(value: Any) -> Any:
    """``value`` with every string encodable as UTF-8 (lone surrogates as ``\\udxxx``)."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_printable(item) for item in value]
    if isinstance(value, dict):
        return {_printable(key): _printable(item) for key, item in value.items()}
    return value


async def _invalid_request(_: Request, error: Exception) -> JSONResponse:
    # FastAPI's own answer echoes the input, and one holding a lone surrogate cannot be
    # encoded: the answer to bad input would itself fail with a 500.
    assert isinstance(error, RequestValidationError)
    faults = []
    for fault in jsonable_encoder(error.errors()):
        if fault.get("type") == "string_unicode":
            fault["msg"] = _NOT_UNICODE
        faults.append(_printable(fault))
    return JSONResponse({"detail": faults}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _domain_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    code = next(code for kind, code in _STATUS if isinstance(error, kind))
    body: dict[str, object] = {"detail": error.message}
    if error.field:
        body["field"] = error.field
    headers = None
    if isinstance(error, LockedError | BusyError):
        headers = {"Retry-After": str(error.retry_after)}
    return JSONResponse(_printable(body), status_code=code, headers=headers)


async def _integrity_error(_: Request, error: Exception) -> JSONResponse:
    # Services check for duplicates first; this is the race two requests can still lose.
    body = {"detail": "this clashes with a change made at the same moment; reload and retry"}
    return JSONResponse(body, status_code=status.HTTP_409_CONFLICT)


def _database_away() -> JSONResponse:
    """The 503 of a request the database could not serve, with when to ask again."""
    return JSONResponse(
        {"detail": DATABASE_AWAY},
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
    )


async def _maybe_database_away(request: Request, error: Exception) -> Response:
    if getattr(request.state, "page_failed", False):
        # A page: NiceGUI drew its error page (webui.components.page_error) and logged it,
        # then calls every matching handler anyway, its answer unused.
        return Response(status_code=status.HTTP_500_INTERNAL_SERVER_ERROR)
    if not database_unavailable(error):
        raise error  # a fault of the code or the request: the 500 (and traceback) it was
    # One line, no traceback: an outage fails every request alike, and its stack says nothing.
    log.warning(
        "%s %s: database unavailable (%s)", request.method, request.url.path, describe(error)
    )
    return _database_away()


def install(app: FastAPI) -> None:
    """Map every DomainError raised by a service onto its HTTP status; a database away, 503."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    for kind in _MAYBE_AWAY:
        app.add_exception_handler(kind, _maybe_database_away)
    app.add_exception_handler(RequestValidationError, _invalid_request)
