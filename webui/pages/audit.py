"""/audit: the audit log, filtered and paged in the database, and whether its chain holds.

``audit:read`` opens the page and is checked again for every page read and export.
``/audit?target_type=device&target_id=press-07`` (also ``actor``, ``action``, ``q``) opens it
narrowed, so other pages can link to the history of one thing.
/audit/export.csv is the page's download: the browser's sign-in cookie instead of a bearer
token, the same checks, audit entry and CSV as /api/v1/audit.csv.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse, Response
from nicegui import app, ui

from core.services import audit_search, users
from core.services.audit import ChainReport, ChainStatus
from webui import signin
from webui.api.audit import Filters, csv_response
from webui.components.audit_view import AuditView
from webui.layout import frame, guard
from webui.services import Services


def register(services: Services) -> None:
    """Register /audit and /audit/export.csv."""

    @ui.page("/audit")
    async def audit_page(
        actor: str = "", action: str = "", target_type: str = "", target_id: str = "", q: str = ""
    ) -> None:
        reader = await guard(services, audit_search.PERMISSION)
        if reader is None:
            return
        report = await services.audit.verify()
        async with services.database.session() as session:
            actions = await audit_search.actions(session, actor=reader)
            people = await users.every_username(session)
        with frame(services, "Audit log", reader):
            _chain_label(report)
            view = AuditView(services, actions, people)
            await view.build(
                actor=actor, action=action, target_type=target_type, target_id=target_id, q=q
            )

    @app.get("/audit/export.csv", include_in_schema=False)
    async def export_csv(query: Filters) -> Response:
        reader = await signin.current_actor(services.database)
        if reader is None:
            return JSONResponse({"detail": "sign in first"}, status_code=401)
        if not reader.can(audit_search.PERMISSION):
            detail = f"your roles do not allow this ('{audit_search.PERMISSION}' is required)"
            return JSONResponse({"detail": detail}, status_code=403)
        async with services.database.session() as session:
            return await csv_response(session, services.database, actor=reader, query=query)


def _chain_label(report: ChainReport) -> None:
    if report.status is ChainStatus.INTACT:
        ui.label(f"Hash chain intact over {report.rows} entries.").mark("chain")
        return
    if report.status is ChainStatus.CHECKPOINT_MISSING:
        text = (
            f"Hash chain intact over {report.rows} entries; "
            "no earlier checkpoint to hold its length against."
        )
        ui.label(text).classes("text-warning").mark("chain")
        return
    if report.first_bad_id is not None:
        text = f"Hash chain BROKEN at entry {report.first_bad_id}: {report.detail}."
    else:
        text = f"Hash chain NOT TRUSTWORTHY ({report.status.value}): {report.detail}."
    ui.label(text).classes("text-negative font-bold").mark("chain")
