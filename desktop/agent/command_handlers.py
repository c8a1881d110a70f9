"""What the station does for each command kind: one handler a kind, in one table.

A handler gets the command's checked arguments (``check_wire_args``) and its deadline (the
event loop's clock, from the signed ``expires_at``) and returns an ``Outcome``: succeeded
with its result data, or failed with the reason, in words a person reads. Adding a kind is
its arguments in ``core/protocol/commands.py``, its handler on the server, and one method
here with its line in ``table``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from core.mqtt.link import NotConnectedError
from core.protocol.commands import FLUSH_OUTBOX, PING, UPDATE_CONFIG
from desktop.agent.commands import Handler, Outcome
from desktop.agent.config_executor import ConfigExecutor
from desktop.agent.replay import Replay
from desktop.agent.station import Station


class StationCommands:
    """The station's handlers, over the parts they drive."""

    def __init__(
        self,
        station: Station,
        *,
        configuration: ConfigExecutor,
        replay: Replay,
        uptime_s: Callable[[], int],
    ) -> None:
        self._station = station
        self._configuration = configuration
        self._replay = replay
        self._uptime_s = uptime_s

    def table(self) -> dict[str, Handler]:
        """Kind -> handler."""
        return {
            PING: self.ping,
            UPDATE_CONFIG: self.update_config,
            FLUSH_OUTBOX: self.flush_outbox,
        }

    async def ping(self, args: dict[str, Any], deadline: float) -> Outcome:
        """A round trip: the station's clock and how long it has run."""
        result = {"station_time_ms": int(time.time() * 1000), "uptime_s": self._uptime_s()}
        return Outcome("succeeded", "answered", result)

    async def update_config(self, args: dict[str, Any], deadline: float) -> Outcome:
        """Wait for the desired version the server made of these changes to be applied."""
        version: int = args["version"]
        already = self._station.state.config_version == version
        outcome, detail = await self._configuration.wait_for(version, deadline=deadline)
        if outcome == "applied":
            said = "already applied" if already else "applied"
            return Outcome("succeeded", f"v{version} {said}", {"version": version})
        return Outcome("failed", f"v{version} not applied: {detail}", {"version": version})

    async def flush_outbox(self, args: dict[str, Any], deadline: float) -> Outcome:
        """Replay the backlog now; done when the server's acks cover it."""
        try:
            flush = await self._replay.flush(deadline=deadline)
        except NotConnectedError as error:
            return Outcome("failed", str(error))
        result = {"sent": flush.sent, "acked_seq": flush.acked_seq, "pending": flush.pending}
        if flush.complete:
            detail = f"sent {flush.sent} samples; the server has every one up to seq {flush.target}"
            return Outcome("succeeded", detail, result)
        detail = (
            f"the server acknowledged up to seq {flush.acked_seq} of {flush.target} "
            "before the command expired"
        )
        if not self._station.link.connected:
            detail += " (the link is down)"
        return Outcome("failed", detail, result)
