"""/: what the signed-in user may see at a glance."""

from __future__ import annotations

from nicegui import ui

from core.services import overview
from webui.layout import NAVIGATION, frame, guard
from webui.services import Services


def register(services: Services) -> None:
    """Register /."""

    @ui.page("/")
    async def overview_page() -> None:
        actor = await guard(services)
        if actor is None:
            return
        async with services.database.session() as session:
            counts = await overview.counts(session, actor=actor)
        with frame(services, "Overview", actor):
            with ui.row().classes("gap-4"):
                for label, count in counts.items():
                    with ui.card().mark(f"count {label}"):
                        ui.label(str(count)).classes("text-3xl")
                        ui.label(label)
            allowed = [label for label, _, _, p in NAVIGATION if p and actor.can(p)]
            ui.label(f"You can open: {', '.join(allowed) or 'nothing yet'}.")
