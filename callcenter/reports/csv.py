"""A report as one CSV file: its sections one after another, each a title row, a
header row and its rows, with an empty row between them. UTF-8 with a byte order
mark, so that Excel opens the Chinese labels as such. Rates are fractions (0.8571),
seconds have one decimal; an empty cell is "no figure" (a rate with no base). Pure."""

from __future__ import annotations

import csv
import io

from .model import Report
from .tables import Column, Value, tables

__all__ = ["render_csv"]


def _cell(column: Column, value: Value) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, float):
        if column.kind == "rate":
            return round(value, 4)
        if column.kind in ("seconds", "score"):
            return round(value, 1 if column.kind == "seconds" else 2)
    return value


def render_csv(report: Report) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for n, table in enumerate(tables(report)):
        if n:
            writer.writerow([])
        writer.writerow([table.title])
        writer.writerow([c.title for c in table.columns])
        for row in table.rows:
            writer.writerow([_cell(c, v) for c, v in zip(table.columns, row, strict=True)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")
