"""The PDF's text extracted with pypdf: the period, the time zone, the labels in
Chinese and English, the figures as the PDF prints them; and the pictures."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
from pathlib import Path

import pypdf
import pytest

from callcenter.reports import charts
from callcenter.reports.pdf import render_pdf
from callcenter.reports.period import parse_period
from tests.reports.sample import empty, sample


def test_the_machine_has_a_cjk_font() -> None:
    """The Chinese labels below need one (scripts/install-interop-tools installs it)."""
    font = charts.cjk_font()
    assert font is not None, "no CJK font: install fonts-wqy-microhei"
    assert font.family in charts.CJK_FAMILIES


def text_of(pdf: bytes) -> str:
    """All pages' text, every run of white space as one space."""
    assert pdf.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


@pytest.fixture(scope="module")
def text() -> str:
    return text_of(render_pdf(sample()))


def test_names_the_period_and_its_zone(text: str) -> None:
    assert "热线服务统计报表 / Hotline service report" in text
    assert "统计期间 / Period: 2026-10-30..2026-11-02" in text
    assert "时区 / Time zone: Asia/Shanghai" in text
    assert "生成时间 / Generated at: 2026-11-03 09:30:00" in text  # 01:30 UTC, in Shanghai
    assert "说明 / Notes: the period is not over yet" in text


def test_the_centres_figures_under_both_languages(text: str) -> None:
    # 102 answered within three rings of 150 offered less 7 short abandons.
    assert "三声接听率 / Service level (three rings) 71.3%" in text
    assert "放弃率 / Abandonment rate 11.2%" in text  # (23 - 7) / 143
    assert "平均应答时间(秒) / ASA (s) 9.2" in text  # 1100 s / 120
    assert "呼入量 / Offered 150" in text
    # The centre's satisfaction: the agents' summed, 196 points over 43 scores.
    assert "满意度询问 / Satisfaction asked 50" in text
    assert "满意度已评分 / Satisfaction scored 43" in text
    assert "满意度均分 / Satisfaction (mean) 4.56" in text


def test_the_sections_and_their_figures(text: str) -> None:
    for heading in ("队列统计 / By queue", "每日统计 / By day", "分时统计 / By hour of day",
                    "队列每日统计 / By queue and day",
                    "队列分时统计 / By queue and hour of day",
                    "应答振铃次数分布 / Answer time in rings", "坐席统计 / By agent",
                    "投诉与建议 / Complaints and suggestions",
                    "放弃来电回拨 / Abandoned callers called back",
                    "来电类别 / Calls by category",
                    "来电类别每日趋势 / Calls by category by day"):  # fmt: skip
        assert heading in text
    assert "hotline 120 100 90 78.3%" in text  # 90 / (120 - 5)
    assert "repair 30 20 12 42.9%" in text
    assert "2026-11-02 0 0 0 – – –" in text  # a day without calls has no rates
    assert "hotline 2026-10-31 45 38 34" in text  # a queue's day
    assert "repair 14 15 0 0 0.0%" in text  # a queue's hour
    assert "1001 张伟 70 3 60 210.0 180.0 30.0 3,600.0 7,200.0 2 1 40 4.57" in text
    assert "1003 王芳 0 0 0 – – – 0.0 0.0 0 0 0 –" in text
    assert "咨询 / Inquiry 80 64 25.0%" in text
    assert "建议 / Suggestion 4 0 –" in text
    assert "办结及时率 / Timeliness rate 66.7%" in text
    assert "采纳率 / Adoption rate 33.3%" in text
    assert "已办结 / Closed 3" in text
    assert "未能拨出 / Could not be placed 1" in text
    # The trend: a day, then its inquiries, complaints, suggestions, repairs and others.
    assert "2026-10-31 35 3 2 10 2" in text
    assert "2026-11-02 0 0 0 0 0" in text


def test_an_empty_report_renders() -> None:
    text = text_of(render_pdf(empty()))
    assert "三声接听率 / Service level (three rings) –" in text
    assert "呼入量 / Offered 0" in text


def test_a_quarter_runs_over_pages_with_every_day() -> None:
    pdf = render_pdf(empty(parse_period("2026-Q4", "Asia/Shanghai")))
    text = text_of(pdf)
    assert "统计期间 / Period: 2026-Q4" in text
    assert "2026-10-01 0 0 0" in text and "2026-12-31 0 0 0" in text
    assert "2026-12-31 0 0 0 0 0" in text  # the trend's last day
    assert len(pypdf.PdfReader(io.BytesIO(pdf)).pages) > 4


def test_english_alone_without_a_cjk_font() -> None:
    text = text_of(render_pdf(sample(), font=None))
    assert "Hotline service report" in text
    assert "Period: 2026-10-30..2026-11-02" in text
    assert "Service level (three rings) 71.3%" in text
    assert "Satisfaction (mean) 4.56" in text
    assert "Calls by category by day" in text
    assert "热线" not in text and "三声" not in text


def test_a_font_reportlab_cannot_embed_falls_back_to_english(tmp_path: Path) -> None:
    bad = tmp_path / "broken.ttf"
    bad.write_bytes(b"not a font at all" * 10)
    text = text_of(render_pdf(sample(), font=charts.CjkFont(str(bad), "Broken")))
    assert "Service level (three rings) 71.3%" in text
    assert "三声" not in text


def test_the_pictures_are_png_and_chinese_with_the_font() -> None:
    pictures = charts.draw(sample())
    assert list(pictures.png) == list(charts.CHARTS)
    assert pictures.chinese
    for png in pictures.png.values():
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert not charts.draw(empty(), font=None).chinese


def test_drawing_leaves_pyplot_alone() -> None:
    """No backend is chosen for the process and no figure is kept: pyplot is never imported."""
    code = (
        "import sys\n"
        "from callcenter.reports.pdf import render_pdf\n"
        "from tests.reports.sample import sample\n"
        "render_pdf(sample())\n"
        "sys.exit('matplotlib.pyplot' in sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", code], cwd=root, timeout=60, check=False)
    assert done.returncode == 0


def test_sections_without_rows_and_markup_in_a_note() -> None:
    """No queue, agent or category, no ring counted: the tables are headings alone; a
    note is printed as written, not read as markup."""
    report = dataclasses.replace(
        sample(), queues=[], agents=[], categories=[], rings=[], notes=["<b>queue</b> & co"]
    )
    text = text_of(render_pdf(report))
    assert "说明 / Notes: <b>queue</b> & co" in text
    assert "坐席统计 / By agent" in text
