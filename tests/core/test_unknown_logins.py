"""Unknown usernames are counted and locked like accounts, in a bounded memory."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.services.auth import lock_seconds
from core.services.unknown_logins import UnknownLogins
from core.settings import Settings

NOW = datetime(2025, 1, 1, tzinfo=UTC)
SETTINGS = Settings(login_max_failures=3, login_lock_seconds=10)


def _lock(attempt: int) -> int | None:
    return lock_seconds(SETTINGS, attempt)


def test_the_threshold_locks_and_each_attempt_after_doubles_the_lock() -> None:
    """3rd attempt locks for 10 s, attempts wait it out, the 4th locks for 20 s."""
    names = UnknownLogins()
    assert [names.attempt("ghost", now=NOW, lock_for=_lock) for _ in range(3)] == [1, 2, 3]
    assert names.locked_until("ghost") == NOW + timedelta(seconds=10)
    assert names.attempt("ghost", now=NOW + timedelta(seconds=9), lock_for=_lock) is None
    later = NOW + timedelta(seconds=10)
    assert names.attempt("ghost", now=later, lock_for=_lock) == 4
    assert names.locked_until("ghost") == later + timedelta(seconds=20)


def test_the_lock_is_capped_at_a_day() -> None:
    """However long the guessing goes on, a lock never passes a day."""
    assert lock_seconds(SETTINGS, 1000) == 86_400


def test_memory_is_bounded_dropping_the_least_recently_tried() -> None:
    """Past its capacity the oldest name goes; a name tried again stays."""
    names = UnknownLogins(capacity=3)
    for name in ("a", "b", "c"):
        names.attempt(name, now=NOW, lock_for=_lock)
    names.attempt("a", now=NOW, lock_for=_lock)
    names.attempt("d", now=NOW, lock_for=_lock)
    assert names.locked_until("b") is None and len(names) == 3
    assert names.attempt("a", now=NOW, lock_for=_lock) == 3
    assert names.attempt("b", now=NOW, lock_for=_lock) == 1
