"""The workbook read back with openpyxl: the figures in their cells as numbers,
rates with a percent format (empty where they have no base), the labels in
both languages, and the native charts on their sheets."""

from __future__ import annotations

import dataclasses
import io
import re
import zipfile
from datetime import datetime
from typing import Any

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet

from callcenter.reports.labels import label
from callcenter.reports.period import parse_period
from callcenter.reports.xlsx import SHEETS, render_xlsx
from tests.reports.sample import empty, sample

HEADER = 4  # the header row of each sheet's first table (1-based)


@pytest.fixture(scope="module")
def book() -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(render_xlsx(sample())))


def row_of(ws: Worksheet, text: str, column: int = 1, start: int = 1) -> int:
    """The first row at or after `start` whose cell in `column` holds `text`."""
    for row in range(start, ws.max_row + 1):
        if ws.cell(row, column).value == text:
            return row
    raise AssertionError(f"{text!r} not in column {column} of {ws.title}")


def value(ws: Worksheet, key: str, start: int = 1) -> Any:
    """The value beside the label of `key` (a list of named figures)."""
    return ws.cell(row_of(ws, label(key), start=start), 2)


def test_sheets_in_order(book: openpyxl.Workbook) -> None:
    assert book.sheetnames == list(SHEETS.values())


def test_summary_names_the_period_its_zone_and_the_centres_figures(book: openpyxl.Workbook) -> None:
    ws = book[SHEETS["summary"]]
    assert ws["A1"].value == "热线服务统计报表 / Hotline service report"
    assert value(ws, "period").value == "2026-10-30..2026-11-02"
    assert value(ws, "time_zone").value == "Asia/Shanghai"
    generated = value(ws, "generated_at")
    assert generated.value == datetime(2026, 11, 3, 9, 30)  # 01:30 UTC, in Shanghai
    assert generated.number_format == "yyyy-mm-dd hh:mm:ss"
    assert ws.cell(row_of(ws, label("notes")), 2).value == "the period is not over yet"
    centre = row_of(ws, label("centre"))
    offered = value(ws, "offered", centre)
    assert offered.value == 150 and isinstance(offered.value, int)
    sl = value(ws, "service_level", centre)
    assert sl.value == pytest.approx(102 / (150 - 7))
    assert sl.number_format == "0.0%"
    assert value(ws, "abandonment_rate", centre).value == pytest.approx((23 - 7) / (150 - 7))
    assert value(ws, "asa_seconds", centre).value == pytest.approx(1100 / 120)
    assert value(ws, "longest_wait_seconds", centre).value == 130.0
    # The centre's satisfaction: the agents' summed (40 + 10 asked, 35 + 8 scored).
    assert value(ws, "satisfaction_asked", centre).value == 50
    assert value(ws, "satisfaction_scored", centre).value == 43
    mean = value(ws, "satisfaction_mean", centre)
    assert mean.value == pytest.approx((160 + 36) / 43)
    assert mean.number_format == "0.00"


def test_queues_each_then_the_centre(book: openpyxl.Workbook) -> None:
    ws = book[SHEETS["queues"]]
    headings = [c.value for c in ws[HEADER]]
    assert headings[:3] == ["队列 / Queue", "呼入量 / Offered", "接通量 / Answered"]
    sl_col = headings.index("三声接听率 / Service level (three rings)") + 1
    assert [ws.cell(r, 1).value for r in range(HEADER + 1, HEADER + 4)] == [
        "hotline", "repair", "全中心 / Whole centre"]  # fmt: skip
    assert [ws.cell(r, 2).value for r in range(HEADER + 1, HEADER + 4)] == [120, 30, 150]
    hotline_sl = ws.cell(HEADER + 1, sl_col)
    assert hotline_sl.value == pytest.approx(90 / 115)
    assert hotline_sl.number_format == "0.0%"
    assert ws.cell(HEADER + 2, sl_col).value == pytest.approx(12 / 28)
    assert ws.cell(HEADER + 5, 1).value is None  # nothing after the centre


def test_by_day_has_every_day_and_no_rate_without_calls(book: openpyxl.Workbook) -> None:
    ws = book[SHEETS["by_day"]]
    headings = [c.value for c in ws[HEADER]]
    sl_col = headings.index(label("service_level")) + 1
    days = [ws.cell(r, 1).value for r in range(HEADER + 1, HEADER + 5)]
    assert days == [datetime(2026, 10, 30), datetime(2026, 10, 31), datetime(2026, 11, 1),
                    datetime(2026, 11, 2)]  # fmt: skip
    assert ws.cell(HEADER + 1, 1).number_format == "yyyy-mm-dd"
    assert ws.cell(HEADER + 3, sl_col).value == pytest.approx(22 / 39)
    no_calls = ws.cell(HEADER + 4, sl_col)
    assert no_calls.value is None  # an empty cell, not 0 and not "–"
    assert no_calls.number_format == "0.0%"
    assert ws.cell(HEADER + 4, 2).value == 0


def test_each_queues_days_and_hours(book: openpyxl.Workbook) -> None:
    ws = book[SHEETS["queue_days"]]
    assert [c.value for c in ws[HEADER]][:4] == [
        label("queue"), label("day"), label("offered"), label("answered")]  # fmt: skip
    rows = [[c.value for c in ws[r]][:3] for r in range(HEADER + 1, HEADER + 9)]
    assert rows[0] == ["hotline", datetime(2026, 10, 30), 40]
    assert rows[4] == ["repair", datetime(2026, 10, 30), 10]
    assert ws.cell(HEADER + 9, 1).value is None  # two queues, four days
    assert ws.freeze_panes == f"C{HEADER + 1}"
    ws = book[SHEETS["queue_hours"]]
    hours = [(ws.cell(r, 1).value, ws.cell(r, 2).value, ws.cell(r, 3).value)
             for r in range(HEADER + 1, HEADER + 49)]  # fmt: skip
    assert hours[9] == ("hotline", 9, 55) and hours[24 + 14] == ("repair", 14, 15)
    assert sum(n for q, _, n in hours if q == "hotline") == 120


def test_by_hour_rings_and_categories(book: openpyxl.Workbook) -> None:
    ws = book[SHEETS["by_hour"]]
    assert [ws.cell(r, 1).value for r in (HEADER + 1, HEADER + 24)] == [0, 23]
    assert ws.cell(HEADER + 1 + 9, 2).value == 70
    assert ws.cell(HEADER + 1 + 14, 2).value == 80

    ws = book[SHEETS["rings"]]
    assert [ws.cell(r, 1).value for r in range(HEADER + 1, HEADER + 8)] == [1, 2, 3, 4, 5, 6, "7+"]
    assert [ws.cell(r, 2).value for r in range(HEADER + 1, HEADER + 8)] == [50, 30, 22, 10, 5, 2, 1]

    ws = book[SHEETS["categories"]]
    header = [c.value for c in ws[HEADER]][:4]  # (the trend below has six columns)
    assert header == [label("category"), label("count"), label("previous"), label("change")]
    inquiry = [c.value for c in ws[HEADER + 1]][:4]
    assert inquiry == ["咨询 / Inquiry", 80, 64, pytest.approx(0.25)]
    assert ws.cell(HEADER + 2, 4).value == pytest.approx(-0.25)
    assert ws.cell(HEADER + 3, 4).value is None  # suggestions: none in the period before
    assert ws.cell(HEADER + 1, 4).number_format == "0.0%"


def test_categories_by_day_below_the_categories(book: openpyxl.Workbook) -> None:
    ws = book[SHEETS["categories"]]
    header = row_of(ws, label("categories_by_day")) + 1
    assert [c.value for c in ws[header]][:6] == [
        label("day"), "咨询 / Inquiry", "投诉 / Complaint", "建议 / Suggestion", "报修 / Repair",
        "其他 / Other"]  # fmt: skip
    rows = [[c.value for c in ws[r]][:6] for r in range(header + 1, header + 5)]
    assert rows == [
        [datetime(2026, 10, 30), 30, 2, 1, 10, 2],
        [datetime(2026, 10, 31), 35, 3, 2, 10, 2],
        [datetime(2026, 11, 1), 15, 1, 1, 5, 1],
        [datetime(2026, 11, 2), 0, 0, 0, 0, 0],
    ]
    assert ws.cell(header + 1, 1).number_format == "yyyy-mm-dd"
    assert ws.cell(header + 5, 1).value is None  # the period's four days, no more


def test_agents(book: openpyxl.Workbook) -> None:
    ws = book[SHEETS["agents"]]
    headings = [c.value for c in ws[HEADER]]
    aht = headings.index(label("aht_seconds")) + 1
    mean = headings.index(label("satisfaction_mean")) + 1
    assert [ws.cell(r, 2).value for r in range(HEADER + 1, HEADER + 4)] == ["张伟", "Li Na", "王芳"]
    assert ws.cell(HEADER + 1, 1).value == "1001"  # an id stays text
    assert ws.cell(HEADER + 1, aht).value == pytest.approx((12600 + 2100) / 70)
    assert ws.cell(HEADER + 1, mean).value == pytest.approx(160 / 35)
    assert ws.cell(HEADER + 1, mean).number_format == "0.00"
    assert ws.cell(HEADER + 3, aht).value is None  # took no call
    assert ws.cell(HEADER + 3, 3).value == 0


def test_complaints_and_callbacks(book: openpyxl.Workbook) -> None:
    ws = book[SHEETS["complaints"]]
    assert ws.cell(row_of(ws, "重大投诉 / Serious"), 2).value == 1
    assert ws.cell(row_of(ws, "其他单位 / Other unit"), 2).value == 0
    assert ws.cell(row_of(ws, "已办结 / Closed"), 2).value == 3  # a status, not the closed queue
    timeliness = value(ws, "timeliness_rate")
    assert timeliness.value == pytest.approx(2 / 3)
    assert timeliness.number_format == "0.0%"
    assert value(ws, "adoption_rate").value == pytest.approx(1 / 3)
    assert value(ws, "overdue").value == 1

    ws = book[SHEETS["callbacks"]]
    assert value(ws, "same_day_rate").value == pytest.approx(9 / 16)
    assert ws.cell(row_of(ws, "未能拨出 / Could not be placed"), 2).value == 1
    assert ws.cell(row_of(ws, "无人接听 / No answer"), 2).value == 7


def test_native_charts_on_their_sheets() -> None:
    data = render_xlsx(sample())
    book = openpyxl.load_workbook(io.BytesIO(data))
    charts = {name: len(book[name]._charts) for name in book.sheetnames}
    assert charts == {
        SHEETS["summary"]: 0, SHEETS["queues"]: 0, SHEETS["by_day"]: 2, SHEETS["by_hour"]: 1,
        SHEETS["queue_days"]: 0, SHEETS["queue_hours"]: 0, SHEETS["rings"]: 1, SHEETS["agents"]: 0, SHEETS["complaints"]: 0,
        SHEETS["callbacks"]: 0, SHEETS["categories"]: 2,
    }  # fmt: skip
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        xml = {n: z.read(n).decode() for n in z.namelist() if re.match(r"xl/charts/chart\d+\.xml$", n)}
    assert len(xml) == 6
    kinds = sorted("line" if "<c:lineChart>" in x else "column" for x in xml.values())
    assert kinds == ["column", "column", "column", "line", "line", "line"]
    # The service level's line reads the by-day sheet's service level column (E), days 1-4.
    refs = " ".join(xml.values())
    assert "'每日 By day'!$E$5:$E$8" in refs
    assert "'每日 By day'!$A$5:$A$8" in refs
    assert "'振铃 Rings'!$B$5:$B$11" in refs
    # The trend: a line a category, each reading its column of the four days.
    trend = next(x for x in xml.values() if "类别 Categories" in x and "<c:lineChart>" in x)
    assert trend.count("<c:ser>") == 5
    ws = openpyxl.load_workbook(io.BytesIO(data))[SHEETS["categories"]]
    first = row_of(ws, label("categories_by_day")) + 2
    for col in "ABCDEF":
        assert f"'类别 Categories'!${col}${first}:${col}${first + 3}" in trend


def test_an_empty_report_renders_with_empty_rates() -> None:
    book = openpyxl.load_workbook(io.BytesIO(render_xlsx(empty())))
    ws = book[SHEETS["summary"]]
    centre = row_of(ws, label("centre"))
    assert value(ws, "offered", centre).value == 0
    assert value(ws, "service_level", centre).value is None
    assert value(ws, "asa_seconds", centre).value is None
    ws = book[SHEETS["queues"]]
    assert ws.cell(HEADER + 1, 1).value == "全中心 / Whole centre"  # no queue, the centre alone
    assert len(book[SHEETS["by_day"]]._charts) == 2


def test_a_quarter_has_a_row_a_day() -> None:
    period = parse_period("2026-Q4", "Asia/Shanghai")
    ws = openpyxl.load_workbook(io.BytesIO(render_xlsx(empty(period))))[SHEETS["by_day"]]
    assert ws.cell(HEADER + 1, 1).value == datetime(2026, 10, 1)
    assert ws.cell(HEADER + 92, 1).value == datetime(2026, 12, 31)
    assert ws["A2"].value == "统计期间 / Period: 2026-Q4    时区 / Time zone: Asia/Shanghai"


def test_sections_without_rows() -> None:
    report = dataclasses.replace(sample(), queues=[], agents=[], categories=[], rings=[])
    book = openpyxl.load_workbook(io.BytesIO(render_xlsx(report)))
    assert book[SHEETS["agents"]].cell(HEADER + 1, 1).value is None
    assert book[SHEETS["categories"]].cell(HEADER, 1).value == label("category")
    assert len(book[SHEETS["categories"]]._charts) == 1  # no chart of no cells; the trend's
    assert len(book[SHEETS["by_day"]]._charts) == 2
    report = dataclasses.replace(report, categories_by_day=[])
    book = openpyxl.load_workbook(io.BytesIO(render_xlsx(report)))
    assert len(book[SHEETS["categories"]]._charts) == 0
    assert book[SHEETS["categories"]].cell(
        row_of(book[SHEETS["categories"]], label("categories_by_day")) + 1, 1
    ).value == label("day")
