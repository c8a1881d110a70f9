"""A clock the test moves by hand, for code that takes its ``clock`` as an argument."""

from __future__ import annotations

from datetime import datetime, timedelta


class Clock:
    """Tells ``start`` until the test advances it; it never moves by itself."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        """Move on by ``seconds`` and return the new now."""
        self.now += timedelta(seconds=seconds)
        return self.now
