"""The CSV: text a spreadsheet would run as a formula is shown as text."""

from __future__ import annotations

import csv
import dataclasses
import io

from callcenter.reports.csv import render_csv
from callcenter.reports.model import AgentFigures
from tests.reports.sample import sample


def test_an_agents_name_that_looks_like_a_formula_stays_text() -> None:
    report = sample()
    names = ['=HYPERLINK("http://x","y")', "@SUM(1)", "+1", "-2", "\tx", "王芳"]
    agents = [AgentFigures(f"x{i}", name) for i, name in enumerate(names)]
    rows = list(csv.reader(io.StringIO(
        render_csv(dataclasses.replace(report, agents=agents)).decode("utf-8-sig"))))  # fmt: skip
    start = rows.index(["坐席统计 / By agent"]) + 2
    assert [r[1] for r in rows[start : start + len(names)]] == [
        '\'=HYPERLINK("http://x","y")', "'@SUM(1)", "'+1", "'-2", "'\tx", "王芳"]  # fmt: skip
    # Numbers, negative ones included, stay numbers.
    assert rows[start][2:4] == ["0", "0"]
