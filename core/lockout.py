"""How long a row of failed sign-ins locks a name: one rule for the web and the stations."""

from __future__ import annotations

LOCK_CAP_S = 86_400  # a day: long enough to stop guessing, short enough to reach an admin
MAX_DOUBLINGS = 20  # 2**20 times any base is past the cap already; keeps the power small


def lock_for(attempt: int, *, max_failures: int, base_seconds: int) -> int | None:
    """For how long the ``attempt``-th sign-in in a row locks the name, if it does.

    The ``max_failures``-th attempt locks for ``base_seconds``; each one after doubles it,
    up to a day.
    """
    over = attempt - max_failures
    if over < 0:
        return None
    return int(min(base_seconds * 2 ** min(over, MAX_DOUBLINGS), LOCK_CAP_S))
