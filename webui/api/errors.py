"""Domain errors → HTTP answers with a reason, never a 500."""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError

from core.errors import (
    AuthError,
    ConflictError,
    DomainError,
    ForbiddenError,
    InvalidError,
    LockedError,
    NotFoundError,
)

_STATUS: list[tuple[type[DomainError], int]] = [
    (LockedError, status.HTTP_429_TOO_MANY_REQUESTS),
    (AuthError, status.HTTP_401_UNAUTHORIZED),
    (NotFoundError, status.HTTP_404_NOT_FOUND),
    (ConflictError, status.HTTP_409_CONFLICT),
    (ForbiddenError, status.HTTP_403_FORBIDDEN),
    (InvalidError, status.HTTP_422_UNPROCESSABLE_CONTENT),
]


async def _domain_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DomainError)
    code = next(code for kind, code in _STATUS if isinstance(error, kind))
    body: dict[str, object] = {"detail": error.message}
    if error.field:
        body["field"] = error.field
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, LockedError) else None
    return JSONResponse(body, status_code=code, headers=headers)


async def _integrity_error(_: Request, error: Exception) -> JSONResponse:
    # Services check for duplicates first; this is the race two requests can still lose.
    body = {"detail": "this clashes with a change made at the same moment; reload and retry"}
    return JSONResponse(body, status_code=status.HTTP_409_CONFLICT)


def install(app: FastAPI) -> None:
    """Map every DomainError raised by a service onto its HTTP status."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
