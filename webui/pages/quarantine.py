"""/telemetry/quarantine: samples held back at ingest, why, and the raw values each carried
(``telemetry:quarantine``, an Admin's by default)."""

from __future__ import annotations

from nicegui import ui

from core.errors import InvalidError
from core.services.telemetry import quarantine
from core.services.telemetry.quarantine import Filters
from webui.components.quarantine_list import PAGE, ROUTE, QuarantineList
from webui.layout import frame, guard
from webui.services import Services


def register(services: Services) -> None:
    """Register /telemetry/quarantine."""

    @ui.page(ROUTE)
    async def quarantine_page(device_id: str | None = None) -> None:
        actor = await guard(services, quarantine.PERMISSION)
        if actor is None:
            return
        try:
            filters = Filters(device_id=device_id or None)
        except InvalidError:  # a link to no device anyone could have: show every device's
            filters = Filters()
        async with services.database.session() as session:
            devices = await quarantine.by_device(session, actor=actor)
            shown = await quarantine.page(session, actor=actor, filters=filters, limit=PAGE)
        with frame(services, "Quarantined samples", actor) as ticker:
            ui.label(
                "Samples a station sent that named their device, stream and seq but could not "
                "be stored. They count as received, so the station's outbox moves on; each is "
                "kept here with its reason and the values it carried."
            ).classes("text-slate-600")
            listing = QuarantineList(services.database, devices, shown)
            listing.build()
            ticker.add(listing.tick)
