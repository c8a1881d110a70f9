"""/: what the signed-in user may see at a glance."""

from __future__ import annotations

from nicegui import ui

from core.services import overview
from webui import signin
from webui.layout import NAVIGATION, frame


def register() -> None:
    """Register /."""

    @ui.page("/")
    async def overview_page() -> None:
        actor = await signin.guard()
        if actor is None:
            return
        async with signin.database().session() as session:
            counts = await overview.counts(session, actor=actor)
        with frame("Overview", actor):
            with ui.row().classes("gap-4"):
                for label, count in counts.items():
                    with ui.card().mark(f"count {label}"):
                        ui.label(str(count)).classes("text-3xl")
                        ui.label(label)
            allowed = [label for label, _, _, p in NAVIGATION if p and actor.can(p)]
            ui.label(f"You can open: {', '.join(allowed) or 'nothing yet'}.")
