"""The reports over HTTP, on the command line and written each month (issue 21): who
may fetch them, the formats and their names, bad periods; the monthly files written
once the month is settled, listed and fetched, and a failure to write them (the
disk) counted and tried again."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcenter.agent.auth import Sessions
from callcenter.agent.reports_api import ReportsApi
from callcenter.floor_side.reports import MonthlyReports
from tests.records.test_reports import SHANGHAI, month  # noqa: F401  (the fixture month)

USERS = {"sup": "supervisor", "mgr": "manager", "qa": "qa", "tl": "team_leader", "a1": "agent"}


@dataclass
class Api:
    client: TestClient[Any, Any]
    tokens: dict[str, str]
    directory: Path

    async def get(self, path: str, who: str = "sup", **params: str) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}
        return await self.client.get(path, headers=headers, params=params)


Pooled = Callable[[], Awaitable[Any]]


@pytest.fixture
async def get_pool(database: str, month: asyncpg.Connection) -> AsyncIterator[Pooled]:  # noqa: F811
    """The fixture month's database as the service's pool is had (`pool.get`)."""
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)

    async def get() -> Any:
        return pool

    try:
        yield get
    finally:
        await pool.close()


async def until(done: Callable[[], bool]) -> None:
    """Wait (at most ten seconds) until `done()`."""
    for _ in range(200):
        if done():
            return
        await asyncio.sleep(0.05)


@pytest.fixture
async def api(get_pool: Pooled, tmp_path: Path) -> AsyncIterator[Api]:
    sessions = Sessions()
    for user, role in USERS.items():
        sessions.add_user(user, f"{user}-pw", role)
    tokens = {u: await sessions.login(u, f"{u}-pw", "127.0.0.1") for u in USERS}
    app = web.Application()
    app.add_routes(ReportsApi(sessions, pool=get_pool, zone=SHANGHAI, directory=tmp_path,
                              now=lambda: datetime(2026, 12, 7, 12, tzinfo=UTC)).routes())  # fmt: skip
    async with TestClient(TestServer(app)) as client:
        yield Api(client, tokens, tmp_path)


async def test_supervisors_managers_and_qa_fetch_a_report_agents_and_team_leaders_not(
    api: Api,
) -> None:
    for who in ("sup", "mgr", "qa"):
        r = await api.get("/api/reports", who, period="2026-11")
        assert r.status == 200, (who, await r.text())
        body = await r.json()
        assert (body["period"], body["time_zone"], body["first_day"], body["last_day"]) == (
            "2026-11", SHANGHAI, "2026-11-01", "2026-11-30")  # fmt: skip
        assert body["sections"]["centre"][0]["offered"] == 8
        assert body["sections"]["centre"][0]["satisfaction_mean"] == 5.0
        trend = body["sections"]["categories_by_day"]
        assert len(trend) == 30 and trend[0] == {
            "day": "2026-11-01", "inquiry": 1, "complaint": 1, "suggestion": 0, "repair": 0,
            "other": 0}  # fmt: skip
    for who, status in (("a1", 403), ("tl", 403), ("nobody", 401)):
        r = await api.get("/api/reports", who, period="2026-11")
        assert r.status == status and "error" in await r.json()


async def test_the_csv_comes_as_a_named_attachment(api: Api) -> None:
    r = await api.get("/api/reports", period="2026-Q4", format="csv")
    assert r.status == 200 and r.content_type == "text/csv"
    assert r.headers["Content-Disposition"] == 'attachment; filename="report-2026-Q4.csv"'
    text = (await r.read()).decode("utf-8-sig")
    assert text.splitlines()[2].startswith("2026-Q4,Asia/Shanghai,")
    r = await api.get("/api/reports/days", **{"from": "2026-11-01"}, days="2", format="csv",
                      tz="UTC")  # fmt: skip
    assert r.headers["Content-Disposition"] == (
        'attachment; filename="report-2026-11-01_2026-11-02.csv"')  # fmt: skip


async def test_the_workbook_and_the_pdf_carry_the_months_figures(api: Api) -> None:
    import openpyxl
    import pypdf

    r = await api.get("/api/reports", period="2026-11", format="xlsx")
    assert r.status == 200 and r.content_type == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")  # fmt: skip
    assert r.headers["Content-Disposition"] == 'attachment; filename="report-2026-11.xlsx"'
    book = openpyxl.load_workbook(io.BytesIO(await r.read()))
    cells = [c for ws in book.worksheets for row in ws.iter_rows(values_only=True) for c in row]
    assert "2026-11" in cells and SHANGHAI in cells and "李明" in cells
    r = await api.get("/api/reports", period="2026-11", format="pdf")
    assert r.status == 200 and r.content_type == "application/pdf"
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(await r.read())).pages)
    assert "2026-11" in text and SHANGHAI in text and "Wang Fang" in text


@pytest.mark.parametrize(
    ("path", "params", "says"),
    [
        ("", {"period": "2026-13"}, "no month"),
        ("", {"period": "November"}, "neither a month"),
        ("", {"period": "2026-11", "from": "2026-11-01"}, "not a parameter"),
        ("/days", {"from": "2026-11-05"}, "days: how many"),
        ("/days", {"from": "2026-11-05", "days": "0"}, "days: an integer from 1 to 731"),
        ("/days", {"from": "2026-11-05", "days": "732"}, "days: an integer from 1 to 731"),
        ("/days", {"from": "2026-02-30", "days": "1"}, "from: an ISO date"),
        ("/days", {"days": "1"}, "from: an ISO date"),
        ("", {"period": "2026-11", "tz": "Mars/Olympus"}, "not an IANA time zone"),
        ("/days", {"from": "2026-11-05", "days": "1", "tz": "null"}, "not an IANA time zone"),
        # A file of the tz database, not a zone PostgreSQL knows.
        ("", {"period": "2026-11", "tz": "localtime"}, "not an IANA time zone"),
        ("/days", {"from": "9999-12-31", "days": "1"}, "between 1970 and 9998"),
        ("/days", {"from": "0001-01-01", "days": "1"}, "between 1970 and 9998"),
        ("", {"period": "2026-11", "format": "docx"}, "format: one of"),
        ("", {"period": "2026-11", "limit": "3"}, "not a parameter"),
        ("", {}, "give a period"),
    ],
)
async def test_a_bad_period_or_format_is_refused_saying_why(
    api: Api, path: str, params: dict[str, str], says: str
) -> None:
    r = await api.get(f"/api/reports{path}", **params)
    assert r.status == 400
    assert says in (await r.json())["error"]


async def test_the_monthly_report_is_written_once_the_month_is_settled(
    api: Api, get_pool: Pooled
) -> None:
    clock = [datetime(2026, 11, 30, 16, 30, tzinfo=UTC)]  # December 1, 00:30 in Shanghai
    monthly = MonthlyReports(get_pool, now=lambda: clock[0], directory=api.directory,
                             zone=SHANGHAI, formats=["csv"], delay=timedelta(hours=1))  # fmt: skip
    # Half an hour after November's end: October is the month due (not November yet).
    assert [p.name for p in await monthly.write_due()] == ["report-2026-10.csv"]
    assert await monthly.write_due() == []  # written once
    clock[0] += timedelta(hours=1)
    [path] = await monthly.write_due()
    assert path.name == "report-2026-11.csv"
    assert path.read_bytes().decode("utf-8-sig").splitlines()[2].startswith("2026-11,")
    assert monthly.written == {"csv": 2}

    r = await api.get("/api/reports/files")
    assert [f["name"] for f in await r.json()] == ["report-2026-11.csv", "report-2026-10.csv"]
    r = await api.get("/api/reports/files/report-2026-11.csv")
    assert r.status == 200 and await r.read() == path.read_bytes()
    for name in ("..%2Fsecret.csv", "report-2026-12.csv", "notes.txt"):
        r = await api.get(f"/api/reports/files/{name}")
        assert r.status == 404, name
    assert (await api.get("/api/reports/files", "a1")).status == 403
    assert not [p for p in api.directory.iterdir() if p.name.startswith(".")]  # no leftovers


async def test_a_monthly_report_the_disk_refuses_is_counted_and_written_later(
    get_pool: Pooled, tmp_path: Path
) -> None:
    blocked = tmp_path / "reports"
    blocked.write_text("a file where the directory should be")  # the disk refuses
    monthly = MonthlyReports(get_pool, now=lambda: datetime(2026, 12, 7, tzinfo=UTC),
                             directory=blocked, zone=SHANGHAI, formats=["csv", "json"],
                             delay=timedelta(hours=1), first_after=0, interval=0.05)  # fmt: skip
    try:
        monthly.start()
        await until(lambda: monthly.failures >= 2)
        assert monthly.failures >= 2 and monthly.written == {"csv": 0, "json": 0}
        blocked.unlink()  # room again
        await until(lambda: monthly.written["json"] > 0)
        assert sorted(p.name for p in blocked.iterdir()) == [
            "report-2026-11.csv", "report-2026-11.json"]  # fmt: skip
        names = {m.name for m in monthly.collect()}
        assert {"callcenter_reports_written", "callcenter_report_failures"} <= names
    finally:
        await monthly.stop()


def test_the_command_writes_a_report_and_refuses_a_bad_period(
    database: str, month: asyncpg.Connection, tmp_path: Path  # noqa: F811
) -> None:
    env = {**os.environ, "CALLCENTER_DATABASE__DSN": database,
           "CALLCENTER_SERVICE__DATA_DIR": str(tmp_path)}  # fmt: skip
    out = tmp_path / "november.csv"
    done = subprocess.run(
        [sys.executable, "-m", "callcenter", "report", "--period", "2026-11", "--format", "csv",
         "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "report 2026-11 (Asia/Shanghai) written" in done.stderr
    lines = out.read_bytes().decode("utf-8-sig").splitlines()
    assert lines[2].startswith("2026-11,Asia/Shanghai,")
    bad = subprocess.run(
        [sys.executable, "-m", "callcenter", "report", "--period", "2026-13", "--out", "-"],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "no month '2026-13'" in bad.stderr


async def test_temporary_files_a_killed_writer_left_are_removed_at_start(
    get_pool: Pooled, tmp_path: Path
) -> None:
    left = tmp_path / ".report-2026-11.csv.k3j2h1.tmp"
    left.write_bytes(b"half a report")
    monthly = MonthlyReports(get_pool, now=lambda: datetime(2026, 12, 7, tzinfo=UTC),
                             directory=tmp_path, zone=SHANGHAI, formats=["csv"],
                             delay=timedelta(hours=1), first_after=0, interval=60)  # fmt: skip
    try:
        monthly.start()
        await until(lambda: monthly.written["csv"] > 0)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["report-2026-11.csv"]
    finally:
        await monthly.stop()
