"""The reports page's body: which report, for which device and range, as chart, table, files.

Times are typed in the reader's zone (the fields name it) and every time shown reads in it.
Each change reads the report again as whoever is signed in now (``submit``), and the service
checks ``reports:read`` and the report's own permission; the downloads go through
/reports/<name>.csv and .pdf, whose own requests check again and are audited.
"""

from __future__ import annotations

from datetime import UTC, tzinfo
from urllib.parse import urlencode

from nicegui import Client, background_tasks, context, ui
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.engine import Database
from core.services import reports
from core.services.actor import Actor
from core.services.reports import Table, audit_report
from core.services.reports.cells import asked, zone_name
from webui.components.audit_filters import ANY, TIME_FORMAT, action_choices, typed_time
from webui.components.browser_time import ask_zone, zone_abbreviation
from webui.components.report_catalog import Ask, Report
from webui.components.report_charts import chart
from webui.components.report_table import report_table
from webui.forms import ErrorPlace, allowed, submit, view_only

ALL = ""  # the device choice "All devices"


class ReportView:
    """Report, device and range pickers (for the audit log also actor and action); the chart
    and the table; CSV and PDF downloads."""

    def __init__(
        self,
        database: Database,
        offered: list[Report],
        devices: dict[str, str],
        zone: tzinfo,
        *,
        actors: list[str] | None = None,
        actions: list[str] | None = None,
    ) -> None:
        self.database = database
        self.offered = {r.name: r for r in offered}
        self.devices = devices
        self.zone = zone
        self.actors = actors or []  # usernames and the system's actors, for the audit log
        self.actions = actions or []  # the actions the log holds (audit_search.actions)

    def build(self, *, report: str, device: str) -> None:
        """Lay out the pickers and the places the report is drawn in."""
        first = report if report in self.offered else next(iter(self.offered))
        zone = zone_abbreviation(self.zone)  # "EST": the full name would not fit the label
        with ui.row().classes("w-full items-start gap-3"):
            choices = {name: r.title for name, r in self.offered.items()}
            self.report = ui.select(choices, value=first, label="Report").classes("w-56")
            self.report.mark("report-choice")
            self.device = ui.select(
                {ALL: "All devices", **self.devices},
                value=device if device in self.devices else ALL,
                label="Device",
                with_input=True,
            )
            self.device.classes("w-56").mark("report-device")
            # The audit log's own filters; its Device select narrows to what was done to it.
            actors = {ANY: "Anyone"} | {a: a for a in self.actors}
            self.actor = ui.select(actors, value=ANY, label="Actor", with_input=True)
            self.actor.classes("w-40").mark("report-actor")
            self.action = ui.select(action_choices(self.actions), value=ANY, label="Action")
            self.action.props("options-dense").classes("w-44").mark("report-action")
            for audit_only in (self.actor, self.action):
                audit_only.bind_visibility_from(self.report, "value", _is_audit)
            # Empty: up to now, from a week before (the services' own defaults, in words).
            self.start = ui.input(f"From ({zone})", placeholder="a week before To")
            self.end = ui.input(f"To ({zone})", placeholder="now")
            self.start.classes("w-48").mark("report-from")
            self.end.classes("w-48").mark("report-to")
            ui.button("Show", icon="query_stats", on_click=self.show).mark("report-show")
        with ui.row().classes("w-full items-center gap-3 no-wrap"):
            self.summary = ui.label().classes("grow text-slate-700").mark("report-summary")
            csv = ui.button("CSV", icon="download", on_click=self.export_csv)
            csv.props("outline").classes("shrink-0").mark("report-csv")
            pdf = ui.button("PDF", icon="picture_as_pdf", on_click=self.export_pdf)
            pdf.props("outline").classes("shrink-0").mark("report-pdf")
        self._label_device()
        self.report.on_value_change(self._label_device)
        for field in (self.report, self.device, self.actor, self.action):
            field.on_value_change(self.show)
        for typed in (self.start, self.end):
            typed.on("keydown.enter", self.show)
        self.error = ui.label().classes("text-negative").mark("report-error")
        self.chart = ui.echart({}).classes("w-full h-80").mark("report-chart")
        self.rows = ui.column().classes("w-full")
        client = context.client
        background_tasks.create(self._learn_zone(client), name="ask the browser's time zone")

    async def _learn_zone(self, client: Client) -> None:
        """Once the browser names its zone (no cookie yet), read the typed times and all
        times shown in it."""
        await client.connected()
        zone = await ask_zone(client)
        if zone is None or zone == self.zone:
            return
        with client:
            for field, label in ((self.start, "From"), (self.end, "To")):
                try:
                    typed = typed_time(str(field.value or ""), self.zone)
                except ValueError:
                    typed = None
                if typed is not None:
                    field.value = f"{typed.astimezone(zone):{TIME_FORMAT}}"
                field.label = f"{label} ({zone_abbreviation(zone)})"
            self.zone = zone
            await self.show()

    @view_only
    def _label_device(self, *_: object) -> None:
        """For the audit log the device is what was acted on: the label says so."""
        self.device.label = "Target device" if _is_audit(self.report.value) else "Device"

    def chosen(self) -> Report:
        """The report picked."""
        return self.offered[str(self.report.value)]

    def ask(self) -> Ask | None:
        """The filters as an Ask, or None with the field's error shown."""
        self.start.error = self.end.error = None
        self.error.text = ""
        times = []
        for field in (self.start, self.end):
            try:
                times.append(typed_time(str(field.value or ""), self.zone))
            except ValueError as error:
                field.error = str(error)
                return None
        device = str(self.device.value or "") or None
        audit = _is_audit(self.report.value)
        return Ask(
            device_id=device,
            start=times[0],
            end=times[1],
            zone=self.zone,
            actor=(str(self.actor.value or "") or None) if audit else None,
            action=(str(self.action.value or "") or None) if audit else None,
        )

    async def show(self, *_: object) -> None:
        """Read the report as whoever is signed in now, and draw its chart and rows."""
        ask, report = self.ask(), self.chosen()
        if ask is None:
            return

        async def work(session: AsyncSession, actor: Actor) -> Table:
            return await report.run(session, actor, ask)

        fields: dict[str, ErrorPlace] = {"from": self.start, "to": self.end, "": self.error}
        table = await submit(self.database, reports.PERMISSION, work, fields)
        if table is None:
            return
        count = f"{len(table.rows):,} row{'' if len(table.rows) == 1 else 's'}"
        what = asked(table.filters, self.zone)
        self.summary.text = f"{table.title}: {count} · {what} · times in {zone_name(self.zone)}"
        self.chart.options.clear()
        self.chart.options.update(chart(table, self.zone))
        self.chart.update()
        self.rows.clear()
        with self.rows:
            report_table(table, self.zone)

    def _url(self, format: reports.Format, ask: Ask) -> str:
        params = {
            "device": ask.device_id or "",
            "from": ask.start.astimezone(UTC).isoformat() if ask.start else "",
            "to": ask.end.astimezone(UTC).isoformat() if ask.end else "",
            "zone": zone_name(self.zone),
            "actor": ask.actor or "",
            "action": ask.action or "",
        }
        query = urlencode({k: v for k, v in params.items() if v})
        return f"/reports/{self.chosen().name}.{format}?{query}"

    async def _download(self, format: reports.Format) -> None:
        ask = self.ask()
        if ask is None or await allowed(self.database, reports.PERMISSION) is None:
            return
        ui.download.from_url(self._url(format, ask))

    async def export_csv(self) -> None:
        """Download the report as CSV (the download's own request checks and audits)."""
        await self._download("csv")

    async def export_pdf(self) -> None:
        """Download the report as PDF, times in this page's zone (checked and audited)."""
        await self._download("pdf")


def _is_audit(report: object) -> bool:
    return report == audit_report.NAME
