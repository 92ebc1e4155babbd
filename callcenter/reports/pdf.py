"""A report as a PDF (docs/reports.md), laid out with reportlab
(docs/decisions/0010-reports.md): A4 landscape, the period and its time zone on
every page, the centre's figures, the pictures of `charts`, then each section's
table (`tables.sections`, as the workbook has them).

Text is real text in an embedded subset of a TrueType font, so it can be
searched and copied: the CJK font `charts.cjk_font` finds, for Chinese and
English labels; without one (or one reportlab cannot embed, such as a CFF
OpenType font) Helvetica and English labels alone.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_LEFT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.platypus import (
    CondPageBreak,
    Image,
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from . import charts
from .labels import LABELS, en
from .model import Report
from .tables import (
    Entry,
    Key,
    Kind,
    Value,
    agents_table,
    by_day_table,
    by_hour_table,
    callback_attempts_table,
    callback_entries,
    categories_by_day_table,
    categories_table,
    centre_entries,
    complaint_class_table,
    complaint_entries,
    complaint_status_table,
    generated_local,
    heading,
    note_text,
    queue_days_table,
    queue_hours_table,
    queues_table,
    rings_table,
)
from .tables import Table as Section

__all__ = ["format_value", "render_pdf"]

_PAGE = landscape(A4)
_MARGIN = 12 * mm
_WIDTH = _PAGE[0] - 2 * _MARGIN
_FONT_NAME = "CallcenterReport"
_HEADER_BG = colors.HexColor("#DDEBF7")
_RULE = colors.HexColor("#9BB7D4")
_CHART_WIDTH = _WIDTH / 3 - 3 * mm


def format_value(value: Value, kind: Kind, text: Callable[[str], str]) -> str:
    """A value as the PDF prints it: counts with thousands separators, seconds to a
    tenth, rates as percentages to a tenth, a rate without a base as "–"."""
    if value is None:
        return "–"
    if isinstance(value, Key):
        return heading(value.key, text)
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M:%S}"
    if isinstance(value, date):
        return value.isoformat()
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "seconds":
        return f"{value:,.1f}"
    if kind == "score":
        return f"{value:.2f}"
    return f"{value:,}"


@cache
def _register(path: str) -> str | None:
    """The name of the TrueType font at `path` registered with reportlab, or None
    where reportlab cannot embed it."""
    try:
        name = f"{_FONT_NAME}-{Path(path).stem}"
        pdfmetrics.registerFont(TTFont(name, path, subfontIndex=0))
    except (TTFError, OSError, ValueError):
        return None
    return name


class _Writer:
    """The styles and the text function of one rendering."""

    def __init__(self, report: Report, font: str | None) -> None:
        self.report = report
        self.chinese = font is not None
        self.font = font or "Helvetica"
        base = ParagraphStyle("base", fontName=self.font, fontSize=8, leading=10)
        self.body = base
        self.title = ParagraphStyle("title", base, fontSize=16, leading=20, spaceAfter=4)
        self.h2 = ParagraphStyle(
            "h2", base, fontSize=11, leading=14, spaceBefore=8, spaceAfter=4,
            textColor=colors.HexColor("#1F4E79"), alignment=TA_LEFT,
        )  # fmt: skip
        self.cell = ParagraphStyle("cell", base, fontSize=6.5, leading=8)
        # Chinese breaks between any two characters, English between words only.
        self.cell_zh = ParagraphStyle("cell_zh", self.cell, wordWrap="CJK")
        self.head = ParagraphStyle("head", self.cell, fontSize=6, leading=7.5)
        self.head_zh = ParagraphStyle("head_zh", self.head, wordWrap="CJK")

    def text(self, key: str) -> str:
        """A label in both languages, one over the other; English alone without a CJK font."""
        cn, english = LABELS[key]
        return english if not self.chinese or cn == english else f"{cn} / {english}"

    def name(self, key: str) -> str:
        return heading(key, self.text)

    def para(self, text: str, style: ParagraphStyle) -> Paragraph:
        return Paragraph(escape(text), style)

    def header_cell(self, key: str) -> list[Paragraph]:
        """A column's heading: the Chinese over the English."""
        if self.chinese and key in LABELS and LABELS[key][0] != LABELS[key][1]:
            cn, english = LABELS[key]
            return [self.para(cn, self.head_zh), self.para(english, self.head)]
        return [self.para(self.name(key), self.head)]

    def value_cell(self, value: Value, kind: Kind) -> Any:
        """Names wrap within their column (a Paragraph); figures are one line."""
        text = format_value(value, kind, self.text)
        if isinstance(value, str | Key):
            return self.para(text, self.cell_zh if self.chinese else self.cell)
        return text

    def table_style(self, header_rows: int = 1) -> TableStyle:
        return TableStyle([
            ("FONTNAME", (0, 0), (-1, -1), self.font),
            ("FONTSIZE", (0, 0), (-1, -1), 6.5),
            ("LEADING", (0, 0), (-1, -1), 8),
            ("BACKGROUND", (0, 0), (-1, header_rows - 1), _HEADER_BG),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ("ALIGN", (1, header_rows), (-1, -1), "RIGHT"),
            ("GRID", (0, 0), (-1, -1), 0.25, _RULE),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ("LEFTPADDING", (0, 0), (-1, -1), 2),
            ("RIGHTPADDING", (0, 0), (-1, -1), 2),
        ])  # fmt: skip

    def section(self, table: Section, first_width: float, width: float = _WIDTH) -> Table:
        header = [self.header_cell(c.key) for c in table.columns]
        body = [
            [self.value_cell(v, c.kind) for v, c in zip(row, table.columns, strict=True)]
            for row in table.rows
        ]
        rest = (width - first_width) / max(1, len(table.columns) - 1)
        widths = [first_width] + [rest] * (len(table.columns) - 1)
        t = Table([header, *body], colWidths=widths, repeatRows=1, hAlign="LEFT")
        t.setStyle(self.table_style())
        return t

    def entries(self, entries: list[Entry], per_row: int, width: float = _WIDTH) -> Table:
        """Named figures, `per_row` (name, value) pairs a row."""
        cells: list[list[Any]] = []
        for i in range(0, len(entries), per_row):
            row: list[Any] = []
            for e in entries[i : i + per_row]:
                row += [self.para(self.name(e.key), self.cell_zh if self.chinese else self.cell),
                        self.value_cell(e.value, e.kind)]  # fmt: skip
            row += ["", ""] * (per_row - len(entries[i : i + per_row]))
            cells.append(row)
        pair = width / per_row
        t = Table(cells, colWidths=[pair * 0.68, pair * 0.32] * per_row, hAlign="LEFT")
        style = self.table_style(header_rows=0)
        for col in range(0, 2 * per_row, 2):
            style.add("BACKGROUND", (col, 0), (col, -1), _HEADER_BG)
        t.setStyle(style)
        return t

    def heading(self, key: str) -> Paragraph:
        return self.para(self.text(key), self.h2)


def _story(w: _Writer, pictures: charts.Pictures) -> list[Any]:
    report = w.report
    t = w.text
    story: list[Any] = [w.para(t("title"), w.title)]
    meta = [
        f"{t('period')}: {report.period.label}",
        f"{t('time_zone')}: {report.period.zone}",
        f"{t('generated_at')}: {generated_local(report):%Y-%m-%d %H:%M:%S}",
    ]
    story.append(w.para(" · ".join(meta), w.body))
    for note in report.notes:
        story.append(w.para(f"{t('notes')}: {note_text(note, t)}", w.body))

    story += [w.heading("centre"), w.entries(centre_entries(report), per_row=4)]

    height = _CHART_WIDTH * charts.ASPECT
    images = [
        Image(io.BytesIO(pictures.png[name]), width=_CHART_WIDTH, height=height)
        for name in charts.CHARTS
    ]
    grid = [
        images[i : i + 3] + [""] * (3 - len(images[i : i + 3])) for i in range(0, len(images), 3)
    ]
    pictures_table = Table(grid, colWidths=[_WIDTH / 3] * 3, hAlign="LEFT")
    pictures_table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    story += [Spacer(1, 4 * mm), pictures_table]

    story += [CondPageBreak(40 * mm), w.heading("queues"), w.section(queues_table(report), 24 * mm)]
    story += [CondPageBreak(40 * mm), w.heading("by_day"), w.section(by_day_table(report), 18 * mm)]
    story += [CondPageBreak(60 * mm), w.heading("by_hour"),
              w.section(by_hour_table(report), 12 * mm)]  # fmt: skip
    story += [CondPageBreak(40 * mm), w.heading("queue_days"),
              w.section(queue_days_table(report), 18 * mm)]  # fmt: skip
    story += [CondPageBreak(40 * mm), w.heading("queue_hours"),
              w.section(queue_hours_table(report), 12 * mm)]  # fmt: skip

    half = _WIDTH / 2 - 4 * mm
    side_by_side = Table(
        [[w.heading("rings"), w.heading("categories")],
         [w.section(rings_table(report), 20 * mm, half),
          w.section(categories_table(report), 40 * mm, half)]],
        colWidths=[_WIDTH / 2] * 2, hAlign="LEFT",
    )  # fmt: skip
    side_by_side.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                      ("LEFTPADDING", (0, 0), (-1, -1), 0)]))  # fmt: skip
    story += [CondPageBreak(50 * mm), side_by_side]
    story += [CondPageBreak(40 * mm), w.heading("categories_by_day"),
              w.section(categories_by_day_table(report), 18 * mm, _WIDTH / 2)]  # fmt: skip

    story += [CondPageBreak(40 * mm), w.heading("agents"), w.section(agents_table(report), 18 * mm)]

    third = _WIDTH / 3 - 4 * mm
    complaints = Table(
        [[w.section(complaint_class_table(report), 30 * mm, third),
          w.section(complaint_status_table(report), 30 * mm, third),
          w.entries(complaint_entries(report), per_row=1, width=third)]],
        colWidths=[_WIDTH / 3] * 3, hAlign="LEFT",
    )  # fmt: skip
    complaints.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                    ("LEFTPADDING", (0, 0), (-1, -1), 0)]))  # fmt: skip
    story.append(KeepTogether([w.heading("complaints"), complaints]))

    callbacks = Table(
        [[w.entries(callback_entries(report), per_row=1, width=third),
          w.section(callback_attempts_table(report), 30 * mm, third)]],
        colWidths=[_WIDTH / 3] * 2, hAlign="LEFT",
    )  # fmt: skip
    callbacks.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                   ("LEFTPADDING", (0, 0), (-1, -1), 0)]))  # fmt: skip
    story.append(KeepTogether([w.heading("callbacks"), callbacks]))
    return story


def render_pdf(report: Report, *, font: charts.CjkFont | bool | None = True) -> bytes:
    """The report as PDF bytes. `font` as `charts.draw` takes it: True finds a CJK
    font, None or False prints English alone."""
    chosen = charts.cjk_font() if font is True else (font or None)
    registered = _register(chosen.path) if isinstance(chosen, charts.CjkFont) else None
    pictures = charts.draw(report, font=chosen if registered else None)
    w = _Writer(report, registered)
    out = io.BytesIO()
    footer = f"{report.period.label} ({report.period.zone})"

    def on_page(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(w.font, 7)
        canvas.setFillColor(colors.grey)
        canvas.drawString(_MARGIN, 7 * mm, f"{w.text('title')} · {footer}")
        canvas.drawRightString(_PAGE[0] - _MARGIN, 7 * mm, str(doc.page))
        canvas.restoreState()

    doc = SimpleDocTemplate(
        out, pagesize=_PAGE, leftMargin=_MARGIN, rightMargin=_MARGIN, topMargin=_MARGIN,
        bottomMargin=_MARGIN + 3 * mm, title=f"{en('title')} {report.period.label}",
        author="callcenter", subject=footer,
    )  # fmt: skip
    doc.build(_story(w, pictures), onFirstPage=on_page, onLaterPages=on_page)
    return out.getvalue()
