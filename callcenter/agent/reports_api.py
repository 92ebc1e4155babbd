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
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict

from callcenter.records.reports import gather
from callcenter.reports.period import (
    MAX_DAYS,
    Period,
    PeriodError,
    days,
    parse_period,
    zone_names,
)
from callcenter.reports.render import FORMATS, render
from callcenter.roles import Permission

from .auth import Sessions
from .bodies import json_error as _json_error
from .bodies import logged_in, pooled
from .complaints_api import int_param, only_params

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
        "get": ("A month's or a quarter's report as JSON, CSV, an Excel workbook or a PDF", None,
                200, "Report|file", (400,)),
    },
    "/api/reports/days": {
        "get": ("The report of a run of local days (at most 731)", None, 200, "Report|file",
                (400,)),
    },
    "/api/reports/files": {
        "get": ("The monthly reports the service wrote, newest first", None, 200,
                "ReportFile[]", ()),
    },
    "/api/reports/files/{name}": {
        "get": ("One of the monthly reports", None, 200, "file", (404,)),
    },
}  # fmt: skip
_YEAR = "(19[7-9][0-9]|2[0-9]{3})"
_COMMON = [
    {"name": "format", "in": "query", "schema": {"enum": list(FORMATS), "default": "json"}},
    {"name": "tz", "in": "query", "description": "the local days' time zone (default"
     " [reports] time_zone)", "schema": {"enum": sorted(zone_names())}},
]  # fmt: skip
QUERIES: dict[tuple[str, str], list[dict[str, Any]]] = {
    ("/api/reports", "get"): [
        {"name": "period", "in": "query", "required": True,
         "description": "a month (2026-11) or a quarter (2026-Q4)",
         "schema": {"type": "string", "pattern": f"^{_YEAR}-(0[1-9]|1[0-2]|Q[1-4])$"}},
        *_COMMON,
    ],
    ("/api/reports/days", "get"): [
        {"name": "from", "in": "query", "required": True, "description": "the first local day",
         "schema": {"type": "string", "format": "date",
                    "pattern": f"^{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"}},
        {"name": "days", "in": "query", "required": True, "description": "how many days",
         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_DAYS}},
        *_COMMON,
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
        callback_zone: str | None = None,
        turn: asyncio.Lock | None = None,
    ) -> None:
        self.sessions = sessions
        self._pool = pool
        self.zone = zone  # [reports] time_zone
        self.directory = directory  # where the monthly reports are written
        self._now = now
        self.callback_zone = callback_zone  # [callbacks] time_zone
        # One report rendered at a time, the monthly one's included (floor_side/reports.py).
        self._turn = turn if turn is not None else asyncio.Lock()

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.get("/api/reports", self.report),
            web.get("/api/reports/days", self.report_days),
            web.get("/api/reports/files", self.files),
            web.get("/api/reports/files/{name}", self.file),
        ]

    async def report(self, request: web.Request) -> web.Response:
        """A month's or a quarter's (`period`)."""
        login = logged_in(self.sessions, request, Permission.STATISTICS)
        q = request.query
        only_params(q, ("period", "format", "tz"))
        fmt, zone = self._format_zone(q)
        return await self._answer(login.user_id, fmt, lambda: parse_period(q.get("period"), zone))

    async def report_days(self, request: web.Request) -> web.Response:
        """A run of local days: `from`, and how many `days`."""
        login = logged_in(self.sessions, request, Permission.STATISTICS)
        q = request.query
        only_params(q, ("from", "days", "format", "tz"))
        fmt, zone = self._format_zone(q)
        if "days" not in q:
            raise _json_error(400, f"days: how many days, 1 to {MAX_DAYS}")
        count = int_param(q, "days", 0, 1, MAX_DAYS)

        def period() -> Period:
            try:
                first = date.fromisoformat(q.get("from", ""))
            except ValueError:
                given = q.get("from")
                raise PeriodError(f"from: an ISO date (2026-11-05), not {given!r}") from None
            if first.year > 9000:  # its last day must be a date too
                raise PeriodError("the days must lie between 1970 and 9998")
            return days(first, first + timedelta(days=count - 1), zone)

        return await self._answer(login.user_id, fmt, period)

    def _format_zone(self, q: Any) -> tuple[str, str]:
        fmt = q.get("format", "json")
        if fmt not in FORMATS:
            raise _json_error(400, f"format: one of {', '.join(FORMATS)}")
        return fmt, q.get("tz", self.zone)

    async def _answer(self, user: str, fmt: str, period_of: Callable[[], Period]) -> web.Response:
        try:
            period = period_of()
        except PeriodError as exc:
            raise _json_error(400, str(exc)) from None
        async with self._turn:
            async with pooled(self._pool, "reports") as conn:
                figures = await gather(conn, period, self._now(),
                                       callback_zone=self.callback_zone)  # fmt: skip
            done = await asyncio.to_thread(render, figures, fmt)
        log.info("report made", period=period.label, format=fmt, user=user, bytes=len(done.data))
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
