"""Patience: how long the ack watermark may stand still before the replay resends from it.

A watermark that stands still means one of two things: a message was lost (the broker
dropped a live sample at QoS 0; the server never stores it, so its ack never passes it) or
the server is slow (a fleet of 1,000 stations at 1 Hz on a 2-core server: ack lag p99
40 s). Resending makes good a loss, but it feeds a slow server everything twice, and the
lag grows until nothing keeps up (bench.fleet). So the station tells them apart by what it
sees of its own acks:

- **The lag it measures.** Each live send is timed (monotonic; at most LAG_RECORD at once,
  the oldest kept, so the lag is never measured short); the ack that covers it gives its
  lag, the lag of the oldest send it covers. The recent lag is the largest of the last
  LAG_HISTORY such lags. A stall is a loss only past
  ``max(RESEND_AFTER, RESEND_LAG_FACTOR * recent lag)``: a server that acks 40 s late
  stalls the watermark up to 40 s without losing anything.
- **Backoff.** Each resend the watermark has not yet passed the end of doubles that wait
  (5, 10, 20, … s); an ack past it (what was resent arrived) starts again from one.
  Before any lag is measured (a station just started against a slow server), the backoff
  alone keeps the resends few.
- **A cap.** Whatever the lag and the backoff say, RESEND_CAP: a message truly lost is
  resent at most that long after the watermark stopped, however slow the server was.

A resent sample is timed again from its resend: the ack cannot say which copy it answers,
and from the first send it would count the patience itself as lag, which would then grow
with every loss. From the resend, a slow server's lag is measured short by the patience at
most, and still measured: forgetting resent samples instead, a station that resent at
start never measured a lag again (every sample was resent before its ack came). A new
connect and a server back after being away replay at once, whatever the patience, with
the backoff back to one.
"""

from __future__ import annotations

from collections import deque

RESEND_AFTER = 5.0  # the least stall that means a loss: a healthy server acks in well under 1 s
# A stall of twice the slowest recent ack lag is no longer the server being slow: lags vary
# (the server's ingest commits in batches) but not by twice within LAG_HISTORY acks.
RESEND_LAG_FACTOR = 2.0
# The longest a lost message waits to be resent, whatever the lag: the dashboard's hole from a
# lost live sample closes within a minute, and a fleet's p99 ack lag of 40 s (bench.fleet, the
# 2-core server at 1,000 stations) still stalls the watermark well short of it.
RESEND_CAP = 60.0
LAG_RECORD = 64  # live sends timed at once: 64 s of them at 1 Hz; more would say no more
LAG_HISTORY = 16  # acks whose lags make the recent lag: a few seconds at a healthy server


class Patience:
    """Times live sends against the acks that cover them; says how long a stall must last."""

    def __init__(self) -> None:
        self._sent: deque[tuple[int, float]] = deque()  # (seq, monotonic sent), seq order
        self._lags: deque[float] = deque(maxlen=LAG_HISTORY)
        self._resends = 0  # resends in a row the watermark has not passed the end of
        self._resent_through = 0  # the last seq the latest resend covered

    @property
    def lag(self) -> float:
        """The recent ack lag in seconds (0 before any ack covered a timed send)."""
        return max(self._lags, default=0.0)

    def wait(self) -> float:
        """How long the watermark must stand still before the replay resends from it."""
        floor = max(RESEND_AFTER, RESEND_LAG_FACTOR * self.lag)
        return min(RESEND_CAP, floor * 2.0**self._resends)

    def sent(self, seq: int, now: float) -> None:
        """A live send of ``seq`` at ``now``."""
        if len(self._sent) < LAG_RECORD:
            self._sent.append((seq, now))

    def acked(self, acked_seq: int, now: float) -> None:
        """The watermark moved to ``acked_seq`` at ``now``."""
        oldest = None
        while self._sent and self._sent[0][0] <= acked_seq:
            _, at = self._sent.popleft()
            oldest = at if oldest is None else min(oldest, at)
        if oldest is not None:
            self._lags.append(now - oldest)
        if acked_seq >= self._resent_through:
            self._resends = 0

    def resent(self, through: int, now: float) -> None:
        """A resend at ``now`` of everything up to ``through``: one more in a row."""
        self._resends += 1
        self._resent_through = through
        self._timed_again(through, now)

    def restart(self, through: int, now: float) -> None:
        """A replay at once, at ``now``, of everything up to ``through`` (a connect, the
        server back): the backoff starts from one."""
        self._resends = 0
        self._resent_through = 0
        self._timed_again(through, now)

    def _timed_again(self, through: int, now: float) -> None:
        self._sent = deque((seq, now if seq <= through else at) for seq, at in self._sent)
