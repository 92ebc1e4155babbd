"""A report as an Excel workbook (docs/reports.md), written with xlsxwriter in
memory (docs/decisions/0010-reports.md).

One sheet per section (`tables.sections`), each headed by the section's label,
the period and its time zone. Counts, seconds and rates are numbers (a rate a
fraction shown with a percent format, a rate without a base an empty cell),
days are dates, so the managers can compute on them. Native charts: the
service level and the abandonment rate by day (lines), the calls by hour of
day and the answer time in rings (columns), the categories against the period
before (columns) and by day (lines, one a category: the trend).
"""

from __future__ import annotations

import io
from datetime import date, datetime
from typing import Any

import xlsxwriter

from .labels import label
from .model import Report
from .tables import (
    QUEUE_COLUMNS,
    Entry,
    Key,
    Kind,
    Table,
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
    header_entries,
    heading,
    note_text,
    queue_days_table,
    queue_hours_table,
    queues_table,
    rings_table,
)

__all__ = ["SHEETS", "render_xlsx"]

#: The sheets' names (Excel allows 31 characters and no "/"), by section.
SHEETS: dict[str, str] = {
    "summary": "汇总 Summary",
    "queues": "队列 Queues",
    "by_day": "每日 By day",
    "by_hour": "分时 By hour",
    "queue_days": "队列每日 By queue, day",
    "queue_hours": "队列分时 By queue, hour",
    "rings": "振铃 Rings",
    "agents": "坐席 Agents",
    "complaints": "投诉 Complaints",
    "callbacks": "回拨 Call-backs",
    "categories": "类别 Categories",
}

_NUMBER_FORMATS: dict[Kind, str] = {
    "text": "@",
    "count": "#,##0",
    "seconds": "#,##0.0",
    "score": "0.00",
    "rate": "0.0%",
    "date": "yyyy-mm-dd",
    "time": "yyyy-mm-dd hh:mm:ss",
}

_HEADER_ROW = 3  # the first table's header; the rows above name the section and the period
_CHART_SIZE = {"x_scale": 1.5, "y_scale": 1.1}
_CHART_ROWS = 18  # the rows a chart covers (288 px × 1.1 at 20 px a row), and a margin
#: The categories' lines, in the order of their columns.
_LINE_COLOURS = ("#2E75B6", "#C00000", "#70AD47", "#ED7D31", "#A5A5A5", "#7030A0")


class _Sheet:
    """One worksheet and the workbook's formats."""

    def __init__(self, book: Any, formats: dict[str, Any], report: Report, key: str) -> None:
        self.ws: Any = book.add_worksheet(SHEETS[key])
        self.book = book
        self.formats = formats
        self.ws.write_string(0, 0, label("title" if key == "summary" else key), formats["title"])
        self.ws.write_string(
            1, 0,
            f"{label('period')}: {report.period.label}    "
            f"{label('time_zone')}: {report.period.zone}",
        )  # fmt: skip
        self.ws.set_column(0, 0, 22)
        self.ws.set_column(1, 30, 14)

    def cell(self, row: int, col: int, value: Value, kind: Kind) -> None:
        fmt = self.formats[kind]
        if value is None:
            self.ws.write_blank(row, col, None, fmt)
        elif isinstance(value, Key):
            self.ws.write_string(row, col, heading(value.key, label), fmt)
        elif isinstance(value, str):
            self.ws.write_string(row, col, value, fmt)
        elif isinstance(value, datetime | date):
            self.ws.write_datetime(row, col, value, fmt)
        else:
            self.ws.write_number(row, col, value, fmt)

    def table(self, row: int, table: Table) -> tuple[int, int]:
        """The table's header at `row`, its rows below; the first and last data rows."""
        for col, column in enumerate(table.columns):
            self.ws.write_string(row, col, heading(column.key, label), self.formats["header"])
        for i, values in enumerate(table.rows):
            for col, (value, column) in enumerate(zip(values, table.columns, strict=True)):
                self.cell(row + 1 + i, col, value, column.kind)
        return row + 1, row + len(table.rows)

    def entries(self, row: int, entries: list[Entry]) -> int:
        """Named figures one per row, from `row`; the row after them."""
        self.ws.write_string(row, 0, label("figure"), self.formats["header"])
        self.ws.write_string(row, 1, label("value"), self.formats["header"])
        for i, e in enumerate(entries, start=1):
            self.ws.write_string(row + i, 0, heading(e.key, label))
            self.cell(row + i, 1, e.value, e.kind)
        return row + len(entries) + 1

    def subtitle(self, row: int, key: str) -> None:
        self.ws.write_string(row, 0, label(key), self.formats["subtitle"])

    def chart(
        self,
        kind: dict[str, str],
        title_key: str,
        series: list[tuple[int, str]],
        rows: tuple[int, int],
        at: tuple[int, int],
        percent: bool = False,
    ) -> None:
        """A chart of the columns `series` (column, colour) against column 0 of `rows`;
        none for a table without rows (Excel would repair a chart of no cells)."""
        first, last = rows
        if last < first or not series:
            return
        chart = self.book.add_chart(kind)
        name = self.ws.name
        for col, colour in series:
            options: dict[str, Any] = {
                "name": [name, first - 1, col],  # the column's heading
                "categories": [name, first, 0, last, 0],
                "values": [name, first, col, last, col],
            }
            if kind["type"] == "line":
                options["line"] = {"color": colour, "width": 2}
                fill = {"color": colour}
                options["marker"] = {"type": "circle", "size": 4, "fill": fill, "border": fill}
            else:
                options["fill"] = {"color": colour}
            chart.add_series(options)
        chart.set_title({"name": label(title_key), "name_font": {"size": 11}})
        y_axis: dict[str, Any] = {"major_gridlines": {"visible": True}}
        if percent:
            y_axis.update(num_format="0%", min=0, max=1)
        chart.set_y_axis(y_axis)
        chart.set_legend({"position": "bottom"})
        self.ws.insert_chart(at[0], at[1], chart, _CHART_SIZE)


def _formats(book: Any) -> dict[str, Any]:
    formats: dict[str, Any] = {
        kind: book.add_format({"num_format": fmt}) for kind, fmt in _NUMBER_FORMATS.items()
    }
    formats["title"] = book.add_format({"bold": True, "font_size": 14})
    formats["subtitle"] = book.add_format({"bold": True, "font_size": 12})
    formats["header"] = book.add_format(
        {"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#DDEBF7", "border": 1}
    )
    return formats


def _column(key: str) -> int:
    """The column of a queue figure in a queue table (after the first, the name)."""
    return 1 + [c.key for c in QUEUE_COLUMNS].index(key)


def render_xlsx(report: Report) -> bytes:
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True})
    formats = _formats(book)

    s = _Sheet(book, formats, report, "summary")
    row = _HEADER_ROW
    row = s.entries(row, header_entries(report))
    for note in report.notes:
        s.ws.write_string(row, 0, label("notes"))
        s.ws.write_string(row, 1, note_text(note, label))
        row += 1
    s.subtitle(row + 1, "centre")
    s.entries(row + 2, centre_entries(report))

    s = _Sheet(book, formats, report, "queues")
    s.table(_HEADER_ROW, queues_table(report))
    s.ws.freeze_panes(_HEADER_ROW + 1, 1)

    s = _Sheet(book, formats, report, "by_day")
    rows = s.table(_HEADER_ROW, by_day_table(report))
    s.ws.freeze_panes(_HEADER_ROW + 1, 1)
    below = rows[1] + 2
    s.chart({"type": "line"}, "service_level", [(_column("service_level"), "#2E75B6")],
            rows, (below, 1), percent=True)  # fmt: skip
    s.chart({"type": "line"}, "abandonment_rate", [(_column("abandonment_rate"), "#C00000")],
            rows, (below, 10), percent=True)  # fmt: skip

    s = _Sheet(book, formats, report, "by_hour")
    rows = s.table(_HEADER_ROW, by_hour_table(report))
    s.ws.freeze_panes(_HEADER_ROW + 1, 1)
    s.chart({"type": "column"}, "by_hour",
            [(_column("offered"), "#2E75B6"), (_column("answered"), "#70AD47"),
             (_column("abandoned"), "#C00000")],
            rows, (rows[1] + 2, 1))  # fmt: skip

    for key, table in (("queue_days", queue_days_table(report)),
                       ("queue_hours", queue_hours_table(report))):
        s = _Sheet(book, formats, report, key)
        s.table(_HEADER_ROW, table)
        s.ws.freeze_panes(_HEADER_ROW + 1, 2)

    s = _Sheet(book, formats, report, "rings")
    rows = s.table(_HEADER_ROW, rings_table(report))
    s.chart({"type": "column"}, "rings", [(1, "#2E75B6")], rows, (_HEADER_ROW, 3))

    s = _Sheet(book, formats, report, "agents")
    s.table(_HEADER_ROW, agents_table(report))
    s.ws.freeze_panes(_HEADER_ROW + 1, 2)

    s = _Sheet(book, formats, report, "complaints")
    _, last = s.table(_HEADER_ROW, complaint_class_table(report))
    _, last = s.table(last + 2, complaint_status_table(report))
    s.entries(last + 2, complaint_entries(report))

    s = _Sheet(book, formats, report, "callbacks")
    row = s.entries(_HEADER_ROW, callback_entries(report))
    s.subtitle(row + 1, "attempts")
    s.table(row + 2, callback_attempts_table(report))

    s = _Sheet(book, formats, report, "categories")
    rows = s.table(_HEADER_ROW, categories_table(report))
    s.chart({"type": "column"}, "categories", [(1, "#2E75B6"), (2, "#A5A5A5")],
            rows, (rows[1] + 2, 0))  # fmt: skip
    row = rows[1] + 2 + _CHART_ROWS
    s.subtitle(row, "categories_by_day")
    trend = categories_by_day_table(report)
    rows = s.table(row + 1, trend)
    lines = [(col, _LINE_COLOURS[(col - 1) % len(_LINE_COLOURS)])
             for col in range(1, len(trend.columns))]  # fmt: skip
    s.chart({"type": "line"}, "categories_by_day", lines, rows, (row + 1, len(trend.columns) + 1))

    book.close()
    return out.getvalue()
