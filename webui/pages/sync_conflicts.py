"""/sync/conflicts: values that lost to a later one for the same field, for those who manage
users (``users:manage``: the log holds users' and roles' values, never a password hash)."""

from __future__ import annotations

from nicegui import ui

from core.protocol.topics import is_device_id
from core.services import sync_conflict_views, sync_conflicts
from webui.components.conflict_log import ConflictLog
from webui.components.sync_state import CONFLICTS_ROUTE
from webui.layout import frame, guard
from webui.services import Services


def register(services: Services) -> None:
    """Register /sync/conflicts."""

    @ui.page(CONFLICTS_ROUTE)
    async def conflicts_page(station: str | None = None) -> None:
        actor = await guard(services, sync_conflicts.READ_PERMISSION)
        if actor is None:
            return
        station = station if station and is_device_id(station) else None
        async with services.database.session() as session:
            stations = await sync_conflicts.stations(session, actor=actor)
            shown = await sync_conflict_views.views(session, actor=actor, device_id=station)
        with frame(services, "Sync conflicts", actor) as ticker:
            ui.label(
                "When a station and the server (or two stations) changed the same field, the "
                "later change was kept; the value it replaced is listed here."
            ).classes("text-slate-600")
            log = ConflictLog(services.database, stations, station, shown)
            log.build()
            ticker.add(log.tick)
