"""A report in the format asked for: its bytes, its media type and its file name.
The workbook's and the PDF's libraries are loaded when first asked for."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from .model import Report

__all__ = ["FORMATS", "Rendered", "file_name", "render", "to_json"]

#: Each format's media type and file extension.
FORMATS: Final[dict[str, tuple[str, str]]] = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "pdf": ("application/pdf", "pdf"),
    "json": ("application/json", "json"),
}


@dataclass(frozen=True, slots=True)
class Rendered:
    data: bytes
    media_type: str
    name: str


def file_name(label: str, fmt: str) -> str:
    """``report-2026-11.xlsx``; a run of days ``report-2026-11-05_2026-11-20.csv``."""
    return f"report-{label.replace('..', '_')}.{FORMATS[fmt][1]}"


def render(report: Report, fmt: str) -> Rendered:
    """`report` as `fmt` (one of `FORMATS`); CPU-bound: run it off the event loop."""
    data: bytes
    if fmt == "csv":
        from .csv import render_csv

        data = render_csv(report)
    elif fmt == "xlsx":
        from .xlsx import render_xlsx

        data = render_xlsx(report)
    elif fmt == "pdf":
        from .pdf import render_pdf

        data = render_pdf(report)
    elif fmt == "json":
        data = json.dumps(to_json(report), ensure_ascii=False).encode()
    else:
        raise ValueError(f"no format {fmt!r}: one of {', '.join(FORMATS)}")
    return Rendered(data, FORMATS[fmt][0], file_name(report.period.label, fmt))


def to_json(report: Report) -> dict[str, Any]:
    """The figures as JSON: every section by its name, its rows as objects keyed by
    the columns' label keys (cells as in the CSV; null for "no figure")."""
    from .csv import cell
    from .tables import named_tables

    p = report.period
    return {
        "period": p.label,
        "first_day": p.first.isoformat(),
        "last_day": p.days[-1].isoformat() if p.days else p.first.isoformat(),
        "time_zone": p.zone,
        "generated_at": report.generated_at.isoformat(),
        "notes": report.notes,
        "sections": {
            name: [
                {c.key: None if v is None else cell(c, v)
                 for c, v in zip(t.columns, row, strict=True)}
                for row in t.rows
            ]
            for name, t in named_tables(report)
            if name != "title"
        },
    }
