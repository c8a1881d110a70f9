"""/reports: offline events, availability, configuration changes and the audit log as reports.

``reports:read`` opens the page; each report also needs the read permission of its data,
and both are checked again on every read and download. /reports/<name>.csv and .pdf are the
page's downloads: the browser's sign-in cookie instead of a bearer token, the same checks,
audit entry and files as /api/v1/reports/<name>; the PDF reads times in the zone it is given.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Query
from fastapi.responses import JSONResponse, Response
from nicegui import app, ui

from core.services import audit_search, devices, reports, users
from core.services.reports import Format
from core.services.reports.cells import device_label
from webui import signin
from webui.api.reports import respond
from webui.components.audit_view import SYSTEM_ACTORS
from webui.components.browser_time import known_zone
from webui.components.report_catalog import REPORTS, Ask
from webui.components.report_view import ReportView
from webui.layout import frame, guard
from webui.services import Services

Moment = Annotated[datetime | None, Query(alias="from")]


def register(services: Services) -> None:
    """Register /reports, /reports/{name}.csv and /reports/{name}.pdf."""

    @ui.page("/reports")
    async def reports_page(report: str = "", device: str = "") -> None:
        reader = await guard(services, reports.PERMISSION)
        if reader is None:
            return
        offered = [r for r in REPORTS.values() if reader.can(r.reads)]
        known: dict[str, str] = {}
        if reader.can("devices:read"):
            async with services.database.session() as session:
                for found in await devices.list_devices(session, actor=reader):
                    known[found.id] = device_label(found.id, found.name)
        actors: list[str] = []
        actions: list[str] = []
        if reader.can(audit_search.PERMISSION):  # the audit log report's actor and action
            async with services.database.session() as session:
                actions = await audit_search.actions(session, actor=reader)
                actors = [*await users.every_username(session), *SYSTEM_ACTORS]
        with frame(services, "Reports", reader):
            if not offered:
                ui.label(
                    "Your roles allow no report's data: each report also needs "
                    "'devices:read' or 'audit:read'."
                ).mark("no-reports")
                return
            view = ReportView(
                services.database, offered, known, known_zone(), actors=actors, actions=actions
            )
            view.build(report=report, device=device)
            await view.show()

    async def download(
        name: str,
        format: Format,
        device: str,
        start: datetime | None,
        end: datetime | None,
        zone: str,
        actor: str = "",
        action: str = "",
    ) -> Response:
        reader = await signin.current_actor(services.database)
        if reader is None:
            return JSONResponse({"detail": "sign in first"}, status_code=401)
        report = REPORTS.get(name)
        if report is None:
            return JSONResponse({"detail": f"no report named '{name}'"}, status_code=404)
        for permission in (reports.PERMISSION, report.reads):
            if not reader.can(permission):
                detail = f"your roles do not allow this ('{permission}' is required)"
                return JSONResponse({"detail": detail}, status_code=403)
        try:
            where = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            return JSONResponse({"detail": f"no time zone named '{zone}'"}, status_code=422)
        ask = Ask(
            device_id=device or None,
            start=start,
            end=end,
            zone=where,
            actor=actor or None,
            action=action or None,
        )
        # A refusal (DomainError) is answered as the API answers it: 404 for an unknown
        # device, 422 for a range, 429 with Retry-After while another PDF is drawn.
        async with services.database.session() as session:
            table = await report.run(session, reader, ask)
            sent = await respond(session, actor=reader, table=table, format=format, zone=where)
            assert isinstance(sent, Response)  # a download, never the JSON body
        return sent

    @app.get("/reports/{name}.csv", include_in_schema=False)
    async def export_csv(
        name: str,
        start: Moment = None,
        to: datetime | None = None,
        device: str = "",
        zone: str = "UTC",
        actor: str = "",
        action: str = "",
    ) -> Response:
        return await download(name, "csv", device, start, to, zone, actor, action)

    @app.get("/reports/{name}.pdf", include_in_schema=False)
    async def export_pdf(
        name: str,
        start: Moment = None,
        to: datetime | None = None,
        device: str = "",
        zone: str = "UTC",
        actor: str = "",
        action: str = "",
    ) -> Response:
        return await download(name, "pdf", device, start, to, zone, actor, action)
