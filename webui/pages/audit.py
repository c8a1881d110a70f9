"""/audit: the newest audit entries and whether the hash chain is intact (``audit:read``)."""

from __future__ import annotations

from nicegui import ui

from core.services import audit
from core.services.audit import ChainReport, ChainStatus
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
        report = await services.audit.verify()
        async with services.database.session() as session:
            entries = await audit.recent(session, limit=200)
        with frame(services, "Audit log", actor):
            _chain_label(report)
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


def _change(before: dict[str, object] | None, after: dict[str, object] | None) -> str:
    before, after = before or {}, after or {}
    keys = sorted(set(before) | set(after))
    changed = [
        f"{k}: {before.get(k)!r} → {after.get(k)!r}" for k in keys if before.get(k) != after.get(k)
    ]
    return "; ".join(changed)
