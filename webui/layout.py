"""The app shell every page shares: who may enter, the header with the user, navigation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

from fastapi import Request
from nicegui import context, ui

from core.services import refusals
from core.services.actor import Actor
from webui import signin
from webui.components.clock_menu import clock_menu
from webui.components.link_status import link_status
from webui.components.live_chart import install_script
from webui.components.session_watch import SessionWatch
from webui.components.ticker import Ticker
from webui.forms import allowed
from webui.services import Services

# (label, route, icon, permission needed to see it; None = everyone signed in)
NAVIGATION: list[tuple[str, str, str, str | None]] = [
    ("Overview", "/", "dashboard", None),
    ("Fleet", "/fleet", "sensors", "devices:read"),
    ("Devices", "/devices", "router", "devices:read"),
    ("Bulk config", "/configs/bulk", "tune", "config:write"),
    ("Commands", "/commands", "terminal", "devices:read"),
    ("Users", "/users", "people", "users:manage"),
    ("Roles", "/roles", "admin_panel_settings", "roles:manage"),
    ("Sync conflicts", "/sync/conflicts", "sync_problem", "users:manage"),
    ("Quarantine", "/telemetry/quarantine", "report", "telemetry:quarantine"),
    ("Audit log", "/audit", "history", "audit:read"),
    ("Reports", "/reports", "assessment", "reports:read"),
]


async def guard(services: Services, permission: str | None = None) -> Actor | None:
    """The actor if allowed here; otherwise send to sign-in or show why not, and None."""
    actor = await signin.current_actor(services.database)
    if actor is None:
        asked = context.client.request.url  # sign-in comes back here
        page = f"{asked.path}?{asked.query}" if asked.query else asked.path
        ui.navigate.to(f"/login?{urlencode({'next': page})}")
        return None
    # Kept with the request: a page that fails after this still gets its shell (page_error).
    context.client.request.state.actor = actor
    if permission is not None and not actor.can(permission):
        # Audited like the API's refusals: one entry a minute per person and page.
        route = getattr(context.client.request.scope.get("route"), "path", None)
        refusals.refuse(
            services.database,
            actor=actor.name,
            permission=permission,
            route=f"PAGE {route or context.client.request.url.path}",
        )
        not_allowed(services, actor, permission)
        return None
    return actor


def guarded_actor(request: Request) -> Actor | None:
    """The actor ``guard`` let into this request's page, or None if it got no further."""
    actor = getattr(request.state, "actor", None)
    return actor if isinstance(actor, Actor) else None


@contextmanager
def frame(services: Services, title: str, actor: Actor) -> Iterator[Ticker]:
    """Header with the links' state, navigation, and a content column titled ``title``.

    Yields the page's one ticker: live parts of the page update on it. The page leaves
    for sign-in when its session ends, and reloads when the actor's rights change.
    """
    ui.page_title(f"{title} · PrecisionPulse")
    install_script()
    ticker = Ticker()
    watch = SessionWatch(services.database, actor)
    with ui.header().classes("items-center justify-between bg-slate-800"):
        ui.label("PrecisionPulse").classes("text-lg font-bold")
        with ui.row().classes("items-center gap-4 text-sm"):
            link_status(ticker, services.backbone.link)
        with ui.row().classes("items-center gap-4"):
            clock_menu()
            roles = ", ".join(actor.roles) or "no role"
            ui.label(f"{actor.name} · {roles}").mark("current-user")

            async def logout() -> None:
                current = await allowed(services.database, None)
                if current is not None:  # an ended session was sent to sign-in already
                    await signin.sign_out(services.database, current)
                    ui.navigate.to("/login")

            ui.button("Sign out", icon="logout", on_click=logout).props("flat color=white")
    with ui.left_drawer(value=True).classes("bg-slate-100"):
        for label, route, icon, permission in NAVIGATION:
            if permission is None or actor.can(permission):
                with (
                    ui.link(target=route)
                    .classes("no-underline text-slate-800")
                    .mark(f"nav {label}"),
                    ui.row().classes("items-center gap-2 p-1"),
                ):
                    ui.icon(icon)
                    ui.label(label)
    with ui.column().classes("w-full p-4 gap-4"):
        ui.label(title).classes("text-2xl font-semibold")
        yield ticker
    ticker.start()
    watch.start()


def not_allowed(services: Services, actor: Actor, permission: str) -> None:
    """What a signed-in user sees on a page their roles do not open."""
    with frame(services, "Not allowed", actor):
        ui.label(f"Your roles do not allow this page (it needs '{permission}').").mark(
            "not-allowed"
        )
        ui.link("Back to the overview", "/")
