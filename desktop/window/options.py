"""How the station window treats its operators (idle sign-out, sign-in lockout) and which
theme it wears (no Qt here)."""

from __future__ import annotations

from dataclasses import dataclass, field

from desktop.window.theme import Scheme, chosen_scheme

# Fifteen minutes: a shift's short pauses (a call, a look at the machine) keep the person
# signed in; a station left alone for longer should not act in their name.
IDLE_MINUTES = 15.0
# The web's defaults (core.settings): one lockout rule for the browser and the stations.
MAX_FAILURES = 5
LOCK_SECONDS = 30


@dataclass(frozen=True)
class WindowOptions:
    """The window's rules for signing in and out, and its theme (``PP_WINDOW_THEME``'s by
    default: an unknown value is refused here, before the window opens)."""

    idle_minutes: float = IDLE_MINUTES
    max_failures: int = MAX_FAILURES  # failed sign-ins in a row before the name locks
    lock_seconds: int = LOCK_SECONDS  # the first lock; each failure after doubles it
    scheme: Scheme = field(default_factory=chosen_scheme)

    def __post_init__(self) -> None:
        if not self.idle_minutes > 0:
            msg = f"the idle time must be a positive number of minutes: {self.idle_minutes}"
            raise ValueError(msg)
        if self.max_failures < 1 or self.lock_seconds < 1:
            msg = "sign-in lockout needs at least one failure and one second"
            raise ValueError(msg)

    @property
    def idle_s(self) -> float:
        """The idle time in seconds."""
        return self.idle_minutes * 60
