"""What the overview shows, gathered for each tick: memory every time, the database now and then.

Presence, alarms and identity conflicts are the backbone's, read from memory on the page's
tick. Sync conflicts are counted by the server that answered the station, possibly another
replica, so they are read from the database every ``REFRESH_S``, in the background, with
the actor the page was built for (its session watch ends the page when that changes).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from nicegui import background_tasks

from core.db.engine import Database
from core.services import sync_peers
from core.services.actor import Actor
from webui.backbone import fleet_summary
from webui.backbone.fleet_summary import Attention, PresenceTally
from webui.backbone.server import Backbone
from webui.backbone.thresholds import ActiveAlarm

log = logging.getLogger(__name__)
REFRESH_S = 2.0  # as the fleet's sync lines: one small read per open page every two seconds
# A glance walks every device's presence: at 1,000 devices about half a millisecond, so it
# is taken four times a second, not on each of the ticker's twenty (a person sees no lag).
GLANCE_S = 0.25


@dataclass(frozen=True)
class Glance:
    """The fleet at one tick: presence counts, active alarms, devices worth a look."""

    tally: PresenceTally
    alarms: tuple[ActiveAlarm, ...]  # the latest raised first
    attention: tuple[Attention, ...]  # the most queued first


async def sync_conflicts(database: Database, actor: Actor) -> dict[str, int]:
    """Each station's count of edits that lost to a later one (those with none left out)."""
    async with database.session() as session:
        states = await sync_peers.states(session, actor=actor)
    return {state.device_id: state.conflicts for state in states if state.conflicts}


class OverviewWatch:
    """Gathers a ``Glance`` on each tick; re-reads sync conflicts every ``REFRESH_S``."""

    def __init__(
        self,
        backbone: Backbone,
        database: Database,
        actor: Actor,
        registered: frozenset[str],
        conflicts: dict[str, int],
    ) -> None:
        self.backbone = backbone
        self.database = database
        self.actor = actor
        self.registered = registered
        self.conflicts = conflicts
        self._read_at = time.monotonic()
        self._reading = False
        self._glance: Glance | None = None
        self._glanced_at = 0.0

    def glance(self) -> Glance:
        """The fleet now (memory only, at most GLANCE_S old); reads sync conflicts when due."""
        now = time.monotonic()
        if now - self._read_at >= REFRESH_S and not self._reading:
            self._reading = True
            background_tasks.create(self._read(), name="read sync conflicts")
        if self._glance is not None and now - self._glanced_at < GLANCE_S:
            return self._glance
        backbone = self.backbone
        states = backbone.presence.states()
        conflicts = backbone.identity.conflicts()
        self._glanced_at = now
        self._glance = Glance(
            fleet_summary.tally(states, self.registered),
            tuple(backbone.alarms.everywhere()),
            tuple(fleet_summary.attention(states, conflicts, self.conflicts)),
        )
        return self._glance

    async def _read(self) -> None:
        try:
            self.conflicts = await sync_conflicts(self.database, self.actor)
        except Exception:  # the database away for a moment: the next read tries again
            log.warning("sync conflicts not read", exc_info=True)
        finally:
            self._read_at = time.monotonic()
            self._reading = False
