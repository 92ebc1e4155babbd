"""A report as one CSV file: its sections one after another, each a title row, a
header row and its rows, with an empty row between them. UTF-8 with a byte order
mark, so that Excel opens the Chinese labels as such. Rates are fractions (0.8571),
seconds have one decimal, days and times ISO 8601; an empty cell is "no figure" (a
rate with no base); text that a spreadsheet would take for a formula starts with an
apostrophe. Pure."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

from .labels import label
from .model import Report
from .tables import Column, Key, Value, heading, named_tables

__all__ = ["cell", "render_csv"]


def cell(column: Column, value: Value) -> str | int | float:
    """`value` as a CSV (or JSON) cell: a `Key` by its labels, a rate as a fraction."""
    if value is None:
        return ""
    if isinstance(value, Key):
        return heading(value.key, label)
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        if column.kind == "rate":
            return round(value, 4)
        return round(value, 2 if column.kind == "score" else 1)
    return value


#: The first characters that make a spreadsheet read a cell as a formula (CSV injection).
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _inert(value: str | int | float) -> str | int | float:
    """Text a spreadsheet would run as a formula (an agent named "=HYPERLINK(…)"),
    prefixed with an apostrophe so that it shows as text."""
    return f"'{value}" if isinstance(value, str) and value.startswith(_FORMULA) else value


def render_csv(report: Report) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for n, (_, table) in enumerate(named_tables(report)):
        if n:
            writer.writerow([])
        writer.writerow([heading(table.key, label)])
        writer.writerow([heading(c.key, label) for c in table.columns])
        for row in table.rows:
            writer.writerow([_inert(cell(c, v)) for c, v in zip(table.columns, row, strict=True)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
