"""The Grafana trends dashboard over the records (config/grafana/callcenter-trends.json,
docs/metrics.md "Grafana trends (PostgreSQL)"): the file is what its builder makes,
and every panel's SQL, with Grafana's macros and variables filled in as Grafana
fills them, runs on the records and gives, bucket by bucket, the figures the
managers' report (`records.reports.gather`) gives for the same local days."""

from __future__ import annotations

import importlib.util
import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import pytest

from callcenter.acd.events import CallClosed, CallRejected
from callcenter.records.forms import save_form
from callcenter.records.reports import gather
from callcenter.records.store import Store, to_record
from callcenter.reports.model import QueueFigures, Report
from callcenter.reports.period import Period, days, month

from . import test_reports
from .test_reports import CALLER, NOW, SHANGHAI, form, z

BUILDER = Path(__file__).parents[2] / "config" / "grafana" / "build_trends.py"

month_records = test_reports.month  # the report's fixture month (October 31 – December 1)


def load_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_trends", BUILDER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_checked_in_dashboard_is_what_the_builder_makes() -> None:
    builder = load_builder()
    assert builder.OUTPUT.read_text(encoding="utf-8") == builder.render(), (
        "config/grafana/callcenter-trends.json differs from its builder's output:"
        " run config/grafana/build_trends.py"
    )


def targets() -> list[tuple[str, str]]:
    """(panel title, SQL) of every panel of the checked-in dashboard."""
    dashboard = json.loads(load_builder().OUTPUT.read_text(encoding="utf-8"))
    out = [(p["title"], t["rawSql"]) for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(out) == 8
    return out


async def queue_options(conn: asyncpg.Connection) -> list[str]:
    """The variable `queue`'s options over RANGE (its "All")."""
    dashboard = json.loads(load_builder().OUTPUT.read_text(encoding="utf-8"))
    (sql,) = (v["query"] for v in dashboard["templating"]["list"] if v["name"] == "queue")
    rows = await conn.fetch(expand(sql, RANGE.start, RANGE.end, bucket="", zone="", queues=[]))
    return [r["queue"] for r in rows]


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def expand(sql: str, start: datetime, end: datetime, *, bucket: str, zone: str,
           queues: list[str]) -> str:  # fmt: skip
    """The SQL Grafana's PostgreSQL data source runs for the time range [start, end) of
    whole days (Grafana's range ends a millisecond before `end`): `$__timeFilter(c)` is
    ``c BETWEEN 'from' AND 'to'`` (UTC, RFC 3339); a multi-value variable (queue) is its
    values quoted and comma-separated; a single value is itself, its quotes doubled."""
    to = end - timedelta(milliseconds=1)
    sql = re.sub(
        r"\$__timeFilter\((\w+)\)",
        lambda m: f"{m[1]} BETWEEN '{_instant(start)}' AND '{_instant(to)}'",
        sql,
    )
    sql = sql.replace("$queue", ",".join(_literal(q) for q in queues))
    sql = sql.replace("$bucket", bucket.replace("'", "''")).replace("$zone", zone.replace("'", "''"))
    assert "$" not in sql, sql
    return sql


@pytest.fixture
async def records(month_records: asyncpg.Connection, database: str) -> asyncpg.Connection:
    """The report's month, and its complaint closed in time; one more complaint, in
    December, closed late; on November 15 a call to sales with nobody there, and a call
    to a number no queue takes (rejected: no queue's, in no figure)."""
    conn = month_records
    store = Store(database)
    try:
        await store.write([
            to_record("b", 5000, z("2026-11-15T03:00:00"),
                      CallClosed("na", "sales", CALLER, "no-agent", "reject", "")),
            to_record("b", 5001, z("2026-11-15T04:00:00"),
                      CallRejected("rj", "+862100000000", "no-route")),
        ])  # fmt: skip
    finally:
        await store.close()
    await save_form(conn, form("form-dec-c", None, "a1", "2026-12-02T02:00:00", "complaint",
                               complaint_matter="Nobody called back"), offered=True)  # fmt: skip
    await conn.execute(
        "UPDATE complaints SET status = 'closed', closed_at = received_at + interval '1 hour',"
        " met_at = CASE WHEN form_id = 'form-c3-a2' THEN deadline_at - interval '1 hour'"
        " ELSE deadline_at + interval '1 day' END"
    )
    return conn


RANGE = days(date(2026, 10, 1), date(2026, 12, 31), SHANGHAI)
COUNTS = ("offered", "answered", "abandoned", "short_abandons", "closed", "no_agent")


def bucket_period(kind: str, start: date) -> Period:
    """The local days of one bucket, within RANGE."""
    if kind == "month":
        return month(start.year, start.month, SHANGHAI)
    length = 1 if kind == "day" else 7
    first = max(start, RANGE.first)
    last = min(start + timedelta(days=length - 1), RANGE.end_day - timedelta(days=1))
    return days(first, last, SHANGHAI)


def expected(report: Report, column: str, queue: str | None) -> Any:
    """The report's value of a dashboard column (named as the report names it)."""
    if queue is not None and hasattr(QueueFigures, column):
        figures = next((q for q in report.queues if q.queue == queue), QueueFigures(queue))
        return getattr(figures, column)
    if hasattr(report.centre, column):
        return getattr(report.centre, column)
    categories = {c.category: c.count for c in report.categories}
    if column in categories:
        return categories[column]
    return {
        "complaints_received": report.complaints.received,
        "complaints_closed": report.complaints.closed,
        "complaints_closed_in_time": report.complaints.closed_in_time,
        "complaints_timeliness_rate": report.complaints.timeliness_rate,
    }[column]


def same(value: Any, want: Any) -> bool:
    if want is None or value is None:
        return value is want
    return bool(value == pytest.approx(want))


@pytest.mark.parametrize("kind", ["day", "week", "month"])
async def test_every_panel_counts_as_the_report_counts(
    records: asyncpg.Connection, kind: str
) -> None:
    reports: dict[Period, Report] = {}

    async def report_of(period: Period) -> Report:
        if period not in reports:
            reports[period] = await gather(records, period, NOW)
        return reports[period]

    whole = await report_of(RANGE)
    every = await queue_options(records)
    assert every == [q.queue for q in whole.queues] == ["hotline", "sales"]
    for queues, queue in ((every, None), (["hotline"], "hotline")):
        for title, sql in targets():
            rows = await records.fetch(
                expand(sql, RANGE.start, RANGE.end, bucket=kind, zone=SHANGHAI, queues=queues)
            )
            assert rows, title
            if "time" not in rows[0]:  # the table by queue, over the whole range
                for r in rows:
                    for column, value in r.items():
                        if column != "queue":
                            assert same(value, expected(whole, column, r["queue"])), (
                                title, r["queue"], column)  # fmt: skip
                continue
            for r in rows:
                local = r["time"].astimezone(RANGE.tz)
                assert local.time() == datetime.min.time(), (title, local)  # local midnight
                if kind == "week":
                    assert local.weekday() == 0
                report = await report_of(bucket_period(kind, local.date()))
                for column, value in r.items():
                    if column != "time":
                        assert same(value, expected(report, column, queue)), (
                            title, kind, local.date(), column, value)  # fmt: skip
            for column in COUNTS:  # no bucket left out
                if column not in rows[0]:
                    continue
                assert sum(r[column] for r in rows) == expected(whole, column, queue), (
                    title, column)  # fmt: skip


async def test_the_fixture_has_every_figure_the_panels_show(records: asyncpg.Connection) -> None:
    """The comparison above is not of zeros: every column is non-zero somewhere."""
    seen: dict[str, float] = {}
    for _title, sql in targets():
        everything = expand(
            sql, RANGE.start, RANGE.end, bucket="month", zone=SHANGHAI, queues=["hotline", "sales"]
        )
        rows = await records.fetch(everything)
        for r in rows:
            for column, value in r.items():
                if isinstance(value, (int, float)):
                    seen[column] = seen.get(column, 0) + value
    missing = sorted(c for c, v in seen.items() if not v)
    assert missing == [], missing


def reader_sql() -> str:
    """The read-only role's SQL, as docs/metrics.md gives it."""
    text = (Path(__file__).parents[2] / "docs" / "metrics.md").read_text(encoding="utf-8")
    section = text[text.index("## Grafana trends (PostgreSQL)") :]
    return section[section.index("```sql\n") + 7 : section.index("```\n", section.index("```sql"))]


async def test_the_documented_read_only_role_runs_every_panel_and_writes_nothing(
    records: asyncpg.Connection, database: str
) -> None:
    name = database.split("?")[0].rsplit("/", 1)[1]
    await records.execute(reader_sql().replace("DATABASE callcenter", f'DATABASE "{name}"'))
    try:
        base, _, query = database.partition("?")
        reader = await asyncpg.connect(
            base.split("//", 1)[0] + "//grafana_reader:change%20me@" + base.split("@", 1)[1]
            + (f"?{query}" if query else "")
        )  # fmt: skip
        try:
            for title, sql in targets():
                everything = expand(sql, RANGE.start, RANGE.end, bucket="week", zone=SHANGHAI,
                                    queues=["hotline", "sales"])  # fmt: skip
                assert await reader.fetch(everything), title
            with pytest.raises(asyncpg.PostgresError, match="read-only transaction"):
                await reader.execute("DELETE FROM call_forms")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await reader.fetch("SELECT * FROM customers")
        finally:
            await reader.close()
    finally:
        await records.execute("REASSIGN OWNED BY grafana_reader TO CURRENT_USER;"
                              " DROP OWNED BY grafana_reader; DROP ROLE grafana_reader")  # fmt: skip
