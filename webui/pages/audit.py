"""/audit: the newest audit entries and whether the hash chain is intact (``audit:read``)."""

from __future__ import annotations

from nicegui import ui

from core.services import audit
from webui.layout import frame, guard
from webui.services import Services

COLUMNS = [
    {"name": "at", "label": "When (UTC)", "field": "at", "align": "left"},
    {"name": "actor", "label": "Actor", "field": "actor", "align": "left"},
    {"name": "action", "label": "Action", "field": "action", "align": "left"},
    {"name": "target", "label": "Target", "field": "target", "align": "left"},
    {"name": "change", "label": "Change", "field": "change", "align": "left"},
]


def register(services: Services) -> None:
    """Register /audit."""

    @ui.page("/audit")
    async def audit_page() -> None:
        actor = await guard(services, "audit:read")
        if actor is None:
            return
        async with services.database.session() as session:
            report = await audit.verify_chain(session)
            entries = await audit.recent(session, limit=200)
        with frame(services, "Audit log", actor):
            if report.intact:
                ui.label(f"Hash chain intact over {report.rows} entries.").mark("chain")
            else:
                ui.label(f"Hash chain BROKEN at entry {report.first_bad_id}.").classes(
                    "text-negative font-bold"
                ).mark("chain")
            rows = [
                {
                    "at": e.at.strftime("%Y-%m-%d %H:%M:%S"),
                    "actor": e.actor,
                    "action": e.action,
                    "target": f"{e.target_type} {e.target_id}".strip(),
                    "change": _change(e.before, e.after),
                }
                for e in entries
            ]
            ui.table(columns=COLUMNS, rows=rows, pagination=25).classes("w-full").mark("audit")


def _change(before: dict[str, object] | None, after: dict[str, object] | None) -> str:
    before, after = before or {}, after or {}
    keys = sorted(set(before) | set(after))
    changed = [
        f"{k}: {before.get(k)!r} → {after.get(k)!r}" for k in keys if before.get(k) != after.get(k)
    ]
    return "; ".join(changed)
