"""The reports API (docs/reports.md): a period's report in any format for those who
read the statistics (supervisors, QA, managers; `Permission.STATISTICS`), and the
monthly reports the service wrote into its data directory, listed and fetched.

A report is read from the records with one pooled connection and rendered in a
worker thread, one at a time (a second request waits its turn): rendering a
workbook or a PDF is CPU work that must not hold up the desktop's event loop.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict

from callcenter.records.reports import gather
from callcenter.reports.period import PeriodError, parse_period
from callcenter.reports.render import FORMATS, render
from callcenter.roles import Permission

from .auth import Sessions
from .bodies import json_error as _json_error
from .bodies import logged_in, pooled
from .complaints_api import only_params

__all__ = ["MODELS", "OPERATIONS", "QUERIES", "ReportsApi", "listed"]

log = structlog.get_logger("callcenter.reports")

#: A monthly report's file name, as `reports.render.file_name` makes it.
FILE_NAME = re.compile(r"^report-\d{4}-(?:\d{2}|Q[1-4])\.(?:csv|xlsx|pdf)$")


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReportOut(_Answer):
    period: str
    first_day: str
    last_day: str
    time_zone: str
    generated_at: str
    notes: list[str]
    sections: dict[str, list[dict[str, str | int | float | None]]]


class ReportFile(_Answer):
    name: str
    size: int
    modified_at: str


MODELS: dict[str, type[BaseModel]] = {"Report": ReportOut, "ReportFile": ReportFile}

#: For the OpenAPI document: the report in each format (`admin.openapi_document`).
MEDIA: dict[str, str] = {fmt: media.split(";")[0] for fmt, (media, _) in FORMATS.items()}

OPERATIONS: dict[str, dict[str, tuple[str, str | None, int, str, tuple[int, ...]]]] = {
    "/api/reports": {
        "get": ("A period's report (a month, a quarter or a run of local days) as JSON, CSV,"
                " an Excel workbook or a PDF", None, 200, "Report|file", (400,)),
    },
    "/api/reports/files": {
        "get": ("The monthly reports the service wrote, newest first", None, 200,
                "ReportFile[]", ()),
    },
    "/api/reports/files/{name}": {
        "get": ("One of the monthly reports", None, 200, "file", (404,)),
    },
}  # fmt: skip
_DAY = {"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$"}
QUERIES: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("/api/reports", "get"): [
        {"name": "period", "in": "query", "description": "a month (2026-11) or a quarter"
         " (2026-Q4); or `from` and `to`",
         "schema": {"type": "string", "pattern": r"^\d{4}-(\d{2}|[Qq][1-4])$"}},
        {"name": "from", "in": "query", "description": "the first local day", "schema": _DAY},
        {"name": "to", "in": "query", "description": "the last local day (included; at most"
         " 731 days)", "schema": _DAY},
        {"name": "format", "in": "query", "schema": {"enum": list(FORMATS), "default": "json"}},
        {"name": "tz", "in": "query", "description": "default [reports] time_zone",
         "schema": {"type": "string", "minLength": 1, "maxLength": 64}},
    ],
}  # fmt: skip


def _now() -> datetime:
    return datetime.now(UTC)


def listed(directory: Path) -> list[dict[str, Any]]:
    """The report files in `directory`, newest first (by name: the period)."""
    try:
        entries = [p for p in directory.iterdir() if FILE_NAME.match(p.name) and p.is_file()]
    except FileNotFoundError:
        return []
    out = []
    for path in sorted(entries, key=lambda p: p.name, reverse=True):
        st = path.stat()
        modified = datetime.fromtimestamp(st.st_mtime, UTC).isoformat()
        out.append({"name": path.name, "size": st.st_size, "modified_at": modified})
    return out


class ReportsApi:
    def __init__(
        self,
        sessions: Sessions,
        *,
        pool: Callable[[], Awaitable[Any]] | None,
        zone: str,
        directory: Path,
        now: Callable[[], datetime] = _now,
    ) -> None:
        self.sessions = sessions
        self._pool = pool
        self.zone = zone  # [reports] time_zone
        self.directory = directory  # where the monthly reports are written
        self._now = now
        self._turn = asyncio.Lock()  # one report rendered at a time

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/api/reports", self.report),
            web.get("/api/reports/files", self.files),
            web.get("/api/reports/files/{name}", self.file),
        ]

    async def report(self, request: web.Request) -> web.Response:
        login = logged_in(self.sessions, request, Permission.STATISTICS)
        q = request.query
        only_params(q, ("period", "from", "to", "format", "tz"))
        fmt = q.get("format", "json")
        if fmt not in FORMATS:
            raise _json_error(400, f"format: one of {', '.join(FORMATS)}")
        try:
            period = parse_period(
                q.get("period"), q.get("tz", self.zone), start=q.get("from"), end=q.get("to")
            )
        except PeriodError as exc:
            raise _json_error(400, str(exc)) from None
        async with self._turn:
            async with pooled(self._pool, "reports") as conn:
                figures = await gather(conn, period, self._now())
            done = await asyncio.to_thread(render, figures, fmt)
        log.info("report made", period=period.label, format=fmt, user=login.user_id,
                 bytes=len(done.data))  # fmt: skip
        return web.Response(
            body=done.data,
            content_type=done.media_type.split(";")[0],
            charset="utf-8" if fmt in ("csv", "json") else None,
            headers={"Content-Disposition": f'attachment; filename="{done.name}"'}
            if fmt != "json"
            else None,
        )

    async def files(self, request: web.Request) -> web.Response:
        logged_in(self.sessions, request, Permission.STATISTICS)
        only_params(request.query, ())
        return web.json_response(await asyncio.to_thread(listed, self.directory))

    async def file(self, request: web.Request) -> web.StreamResponse:
        logged_in(self.sessions, request, Permission.STATISTICS)
        only_params(request.query, ())
        name = request.match_info["name"]
        path = self.directory / name
        if not FILE_NAME.match(name) or not await asyncio.to_thread(path.is_file):
            raise _json_error(404, f"no report file {name!r}")
        media = FORMATS[name.rsplit(".", 1)[1]][0]
        return web.FileResponse(
            path,
            headers={
                "Content-Type": media,
                "Content-Disposition": f'attachment; filename="{name}"',
            },
        )
