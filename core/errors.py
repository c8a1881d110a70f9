"""Domain errors that every front end maps onto its own way of saying no."""

from __future__ import annotations


class DomainError(Exception):
    """Base: a request that cannot be carried out, with a reason a person can read."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFoundError(DomainError):
    """The thing named does not exist (or is deleted)."""


class ConflictError(DomainError):
    """The request clashes with what exists, such as a duplicate name."""


class InvalidError(DomainError):
    """The request is well-formed but not acceptable."""


class PreconditionRequiredError(DomainError):
    """A change that must name the version it was made against, and did not."""


class ForbiddenError(DomainError):
    """The actor may not do this."""


class AuthError(DomainError):
    """Sign-in failed or the credentials are no longer valid."""


class UnavailableError(DomainError):
    """The server lacks something this needs (a font, say): not the caller's doing."""


class BusyError(DomainError):
    """The server is doing this for someone else just now: try again after ``retry_after``."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LockedError(AuthError):
    """Too many failed sign-ins: try again later."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
