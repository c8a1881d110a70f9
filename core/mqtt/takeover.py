"""Telling a session taken over by a rival with our client id from a broker that went away.

Two processes with one client id take the session from each other: each connect makes the
broker close the other's connection, and each reconnects at once. MQTT 5 brokers say why
(DISCONNECT 0x8E); over MQTT 3.1.1 Mosquitto closes a taken-over connection exactly as it
closes every connection when it stops. What tells them apart is the pattern. A session is
taken over when the broker closed it (not our keepalive, not our timeout) within seconds of
its CONNACK, and it had been opened at the first attempt after the broker had closed the
one before: a rival reconnects within its backoff, while a broker that stops refuses our
next attempt. One such session can be chance; ``Takeover.evidence`` of them within a
window is a conflict, and then the supervisor waits longer before each reconnect.

The rival that had the longer session sees nothing but a drop now and then; the one that
keeps being thrown off yields, so two processes running this code take the session over
a few times a minute at most instead of several times a second.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason: another connection took over this session


@dataclass(frozen=True)
class Takeover:
    """When dropped sessions mean a rival holds our client id, and how long to yield then."""

    # seconds; a rival takes the session back within its reconnect backoff (0.1-0.2 s) plus
    # a connect, while a broker that loses a network or restarts does so at any age.
    short: float = 5.0
    # taken-over sessions within ``window`` that make a conflict: one may be chance (the
    # broker closed us just as it stopped), two opened at once and closed at once are not.
    evidence: int = 2
    window: float = 30.0  # seconds; two rivals trade the session ~5 times a second
    initial: float = 10.0  # seconds; the first wait, already 50x a rival's reconnect delay
    cap: float = 60.0  # seconds; a rival yielding at the cap costs ~2 takeovers a minute
    # seconds a session must last to end the conflict: longer than ``cap``, so a rival
    # still backing off would have come back and taken it over by then.
    settle: float = 90.0

    def __post_init__(self) -> None:
        if min(self.short, self.window, self.initial) <= 0 or self.evidence < 1:
            msg = f"takeover thresholds must be positive: {self}"
            raise ValueError(msg)
        if not self.initial <= self.cap < self.settle:
            msg = f"takeover waits need initial <= cap < settle: {self}"
            raise ValueError(msg)

    def delay(self, yielded: int, rng: random.Random) -> float:
        """The wait after the conflict's ``yielded``-th takeover (0-based): doubling to the cap.

        Jittered over the top quarter of the bound, enough for two rivals that both yield
        not to come back in lockstep.
        """
        bound = min(self.cap, self.initial * 2 ** min(yielded, 32))
        return rng.uniform(bound * 0.75, bound)


class Rivalry:
    """One supervisor's evidence of a rival: its sessions, the takeovers, the conflict.

    Not thread-safe: the supervisor's loop calls it. Times are ``time.monotonic()`` values.
    """

    def __init__(self, policy: Takeover, rng: random.Random | None = None) -> None:
        self.policy = policy
        self.takeovers = 0  # sessions judged taken over, all conflicts together
        self.since: datetime | None = None  # when the current conflict began; None: no conflict
        self._rng = rng or random.Random()
        self._recent: deque[float] = deque()  # when recent takeovers happened
        self._yielded = 0  # waits in the current conflict
        self._opened = 0.0
        self._at_once = False  # the session was opened at the first attempt after a close
        self._closed_by_broker = False  # the last session ended by the broker's doing

    def opened(self, now: float, *, first_attempt: bool) -> None:
        """A session began (CONNACK); ``first_attempt``: no connect failed since the last one."""
        self._opened = now
        self._at_once = first_attempt and self._closed_by_broker

    def closed(self, now: float, *, by_broker: bool, taken_over: bool = False) -> float | None:
        """The session ended; the wait before reconnecting if it was a takeover in a conflict.

        ``by_broker``: the broker closed it (not our keepalive or timeout, not our stop);
        ``taken_over``: the broker said so (MQTT 5 reason 0x8E), which needs no pattern.
        """
        lasted = now - self._opened
        self._closed_by_broker = by_broker or taken_over
        if lasted >= self.policy.settle:
            self.since, self._yielded = None, 0
        if not taken_over and not (by_broker and self._at_once and lasted < self.policy.short):
            return None
        self.takeovers += 1
        self._recent.append(now)
        while self._recent and self._recent[0] < now - self.policy.window:
            self._recent.popleft()
        if self.since is None:
            if not taken_over and len(self._recent) < self.policy.evidence:
                return None
            self.since = datetime.now(UTC)
        delay = self.policy.delay(self._yielded, self._rng)
        self._yielded += 1
        return delay
