"""What the fleet can be narrowed to, and which devices each choice keeps.

The overview's number cards link to ``/fleet?status=<choice>``. Each card counts by
``fleet_summary``'s rules and the fleet keeps its rows by the same ones, so a number and
the list behind it always name the same devices.
"""

from __future__ import annotations

from webui.backbone import fleet_summary
from webui.backbone.server import Backbone
from webui.components.fleet_row import status_of

ALL = "all"
# Each choice (the ``status`` of ``/fleet?status=``) and how the filter names it.
CHOICES = {
    ALL: "All",
    "online": "Online",
    "stale": "Stale",
    "offline": "Offline",
    "alarm": "Alarms",
    "backlog": "Backlog",
    "conflict": "Conflict",
}


def chosen(status: str) -> str:
    """``status`` when it is a choice, else ``ALL`` (an old or mistyped link shows everyone)."""
    return status if status in CHOICES else ALL


def keeps(choice: str, backbone: Backbone, device_id: str, *, sync_conflicts: int) -> bool:
    """Whether the fleet narrowed to ``choice`` lists ``device_id``.

    ``sync_conflicts`` is the station's count of edits that lost to a later one, as the
    page last read it (the overview reads the same count from the database).
    """
    if choice == ALL:
        return True
    if choice == "alarm":
        return backbone.alarms.count(device_id) > 0
    state = backbone.presence.state(device_id)
    if choice == "backlog":
        return fleet_summary.has_backlog(state)
    if choice == "conflict":
        return fleet_summary.has_conflict(backbone.identity.conflict(device_id), sync_conflicts)
    return status_of(state) == choice
