"""/: the fleet at a glance, live — presence counts, alarms, what needs attention, who went
offline — and what else the signed-in user may open, each number a link to its list."""

from __future__ import annotations

from nicegui import ui

from core.services import devices, offline_events, overview
from core.services.actor import Actor
from webui.components.browser_time import known_zone
from webui.components.overview_attention import AttentionCard
from webui.components.overview_numbers import Numbers, plural
from webui.components.overview_offline import OfflineCard
from webui.components.overview_watch import OverviewWatch, sync_conflicts
from webui.components.ticker import Ticker
from webui.layout import frame, guard
from webui.services import Services

# Where each of the registered counts is listed (``core.services.overview`` names them).
REGISTERED = {"devices": "/devices", "users": "/users", "roles": "/roles"}


def register(services: Services) -> None:
    """Register /."""

    @ui.page("/")
    async def overview_page() -> None:
        actor = await guard(services)
        if actor is None:
            return
        async with services.database.session() as session:
            counts = await overview.counts(session, actor=actor)
        with frame(services, "Overview", actor) as ticker:
            if actor.can("devices:read"):
                await live_fleet(services, actor, ticker)
            registered_line(counts)


async def live_fleet(services: Services, actor: Actor, ticker: Ticker) -> None:
    """The number cards, then what needs attention and the latest offline events, live."""
    async with services.database.session() as session:
        listed = await devices.list_devices(session, actor=actor)
        events = await offline_events.latest(session, actor=actor)
    conflicts = await sync_conflicts(services.database, actor)
    backbone = services.backbone
    registered = frozenset(device.id for device in listed)
    watch = OverviewWatch(backbone, services.database, actor, registered, conflicts)
    zone = known_zone()  # the one the header names: every time on the page reads in it
    numbers = Numbers()
    with ui.column().classes("w-full max-w-5xl gap-4"):
        attention = AttentionCard(services.database, actor, zone)
        offline = OfflineCard(services.database, actor, backbone.presence, zone, events)

    def update() -> None:
        glance = watch.glance()
        numbers.show(glance)
        attention.show(glance)
        offline.update()

    ticker.add(update)


def registered_line(counts: dict[str, int]) -> None:
    """What is registered, each count linked to its list (only those the actor may see)."""
    if not counts:
        ui.label("Your roles open no list yet: ask an administrator for one.").mark(
            "overview-nothing"
        )
        return
    with ui.row().classes("items-center gap-2 text-slate-600").mark("registered"):
        ui.label("Registered:")
        if "devices" in counts:
            enabled = counts.get("enabled devices", counts["devices"])
            text = plural(counts["devices"], "device")
            if enabled != counts["devices"]:
                text += f" ({enabled:,} enabled)"
            ui.link(text, REGISTERED["devices"]).mark("registered devices")
        for key in ("users", "roles"):
            if key in counts:
                ui.link(plural(counts[key], key[:-1]), REGISTERED[key]).mark(f"registered {key}")
