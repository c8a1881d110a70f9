"""Failed sign-ins of usernames that have no account, counted so they lock like real ones.

Were only real accounts counted, the sixth wrong guess would say which usernames exist
(429 for them, 401 for the rest). These names have no row to count in, so the count lives
in memory: a dictionary of at most ``capacity`` names, the least recently tried dropped
first. Asyncio runs the whole check-and-count of ``attempt`` without a pause, so parallel
guesses are numbered one after another, as the users table numbers them for real accounts.

What it does not do: the count is per process and starts afresh on restart; and someone who
tries more than ``capacity`` other unknown names (each costing the server a password check)
can push a name out and have its count start again. Neither unlocks a real account.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime, timedelta

# Ten thousand names of at most 64 characters: about 2 MB, far more than a burst of guesses.
CAPACITY = 10_000


class UnknownLogins:
    """The attempts and lock of each recently tried unknown username."""

    def __init__(self, capacity: int = CAPACITY) -> None:
        self.capacity = capacity
        self._names: OrderedDict[str, tuple[int, datetime | None]] = OrderedDict()

    def attempt(
        self, username: str, *, now: datetime, lock_for: Callable[[int], int | None]
    ) -> int | None:
        """Count one more attempt unless the name is locked: its number, or None.

        ``lock_for`` says for how many seconds the n-th attempt locks the name, if it does;
        the lock is set now, before the (always failing) password check, as for accounts.
        """
        count, until = self._names.pop(username, (0, None))
        if until is not None and until > now:
            self._names[username] = (count, until)
            return None
        count += 1
        seconds = lock_for(count)
        self._names[username] = (count, now + timedelta(seconds=seconds) if seconds else until)
        while len(self._names) > self.capacity:
            self._names.popitem(last=False)
        return count

    def __len__(self) -> int:
        """How many names are remembered (never more than the capacity)."""
        return len(self._names)

    def locked_until(self, username: str) -> datetime | None:
        """Until when the name's sign-ins are refused, if it is known here."""
        entry = self._names.get(username)
        return entry[1] if entry else None
