"""A report as a PDF: title, what was asked, when it was made, and the table, every page numbered.

Written with fpdf2 (pure Python). Text is set in DejaVu Sans, embedded, so ``→``, ``°C`` and
any person's name print as typed; the PDF's own fonts know Latin-1 only. Times read in the
zone given, named at the top and after every time; numbers carry their unit; long text wraps
inside its cell, never cut; a report with many columns turns the page to landscape.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from decimal import Decimal
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from core.errors import UnavailableError
from core.services.reports import Table
from core.services.reports.cells import asked, headings, moment, shown, zone_name

# Debian's fonts-dejavu-core (installed by .ci/run and the Dockerfile): no Python package
# ships a TTF with these glyphs, and the PDF's built-in Helvetica has no → or Greek.
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT = "DejaVu"
PORTRAIT_COLUMNS = 5  # six columns of times and names no longer fit 180 mm side by side
BODY_PT, TITLE_PT, SMALL_PT = 8.5, 15, 8  # 8.5 pt: the smallest size that prints cleanly
NARROWEST_MM, WIDEST_MM = 16.0, 90.0  # a column is never squeezed past "yes", nor hogs a row
PADDING_MM = 1.2
HEADING_FILL = (226, 232, 240)  # the page's slate-200: headings stand out in print too


class _Document(FPDF):
    """An A4 page with the report's name and page N of M at its foot."""

    def __init__(self, title: str, landscape: bool) -> None:
        super().__init__(orientation="L" if landscape else "P", unit="mm", format="A4")
        self.report_title = title
        for style, file in (("", "DejaVuSans.ttf"), ("B", "DejaVuSans-Bold.ttf")):
            path = FONT_DIR / file
            if not path.is_file():
                msg = (
                    f"PDF reports need the DejaVu fonts ({path}): apt-get install fonts-dejavu-core"
                )
                raise UnavailableError(msg)
            self.add_font(FONT, style, str(path))
        self.set_auto_page_break(auto=True, margin=15)
        self.set_title(title)
        self.set_creator("PrecisionPulse")

    def footer(self) -> None:
        """The report's name and the page number, on every page."""
        self.set_y(-12)
        self.set_font(FONT, size=SMALL_PT)
        self.set_text_color(100, 116, 139)
        self.cell(0, 5, f"{self.report_title} · page {self.page_no()} of {{nb}}", align="C")


def _widths(pdf: FPDF, titles: list[str], rows: list[list[str]], width: float) -> list[float]:
    """Each column's share of ``width``: never narrower than its longest word (so no word
    breaks), and the room left shared as the columns' whole texts would want it."""
    pad = 2 * PADDING_MM + 1

    def words(text: str) -> float:
        return max((pdf.get_string_width(w) for w in text.split()), default=0.0)

    least, wanted = [], []
    for n, title in enumerate(titles):
        column = [row[n] for row in rows]
        pdf.set_font(FONT, "B", BODY_PT)
        heading = words(title) + pad
        pdf.set_font(FONT, "", BODY_PT)
        floor = min(max(heading, *(words(t) + pad for t in column), NARROWEST_MM), WIDEST_MM)
        whole = max((pdf.get_string_width(t) + pad for t in column), default=0.0)
        least.append(floor)
        wanted.append(min(max(whole, floor), WIDEST_MM))
    if sum(least) >= width:  # even the words do not fit: every column gives way alike
        return [w * width / sum(least) for w in least]
    spare, extra = width - sum(least), [w - m for w, m in zip(wanted, least, strict=True)]
    if sum(extra) <= spare:  # all fits whole: the room left goes to each as it wanted
        return [w * width / sum(wanted) for w in wanted]
    return [m + e * spare / sum(extra) for m, e in zip(least, extra, strict=True)]


def pdf_bytes(table: Table, *, zone: tzinfo, made_at: datetime) -> bytes:
    """``table`` as a PDF, every time in ``zone``, saying it was made at ``made_at``."""
    pdf = _Document(table.title, landscape=len(shown(table.columns, table.rows)) > PORTRAIT_COLUMNS)
    pdf.add_page()
    pdf.set_font(FONT, "B", TITLE_PT)
    pdf.multi_cell(0, 8, table.title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, size=SMALL_PT + 1)
    pdf.multi_cell(0, 5, f"Asked for: {asked(table.filters, zone)}", new_x="LMARGIN", new_y="NEXT")
    made = f"Made {moment(made_at, zone)} · times in {zone_name(zone)}"
    pdf.multi_cell(
        0,
        5,
        f"{made} · {len(table.rows):,} row{'' if len(table.rows) == 1 else 's'}",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(3)
    pdf.set_font(FONT, size=BODY_PT)
    columns = shown(table.columns, table.rows)
    titles = headings(columns)  # the unit is beside every value
    rows = [[s.text(row, zone) for s in columns] for row in table.rows]
    numeric = [
        any(isinstance(row[s.column.key], int | Decimal) for row in table.rows)
        and not any(isinstance(row[s.column.key], bool) for row in table.rows)
        for s in columns
    ]
    with pdf.table(
        col_widths=_widths(pdf, titles, rows, pdf.epw),
        text_align=tuple("RIGHT" if n else "LEFT" for n in numeric),
        headings_style=FontFace(emphasis="BOLD", fill_color=HEADING_FILL),
        line_height=BODY_PT * 0.5,
        padding=PADDING_MM,
        repeat_headings=1,
    ) as grid:
        grid.row(titles)
        for values in rows:
            grid.row(values)
    if not rows:
        pdf.ln(2)
        pdf.cell(0, 5, "Nothing matched what was asked.")
    return bytes(pdf.output())
