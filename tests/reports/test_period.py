"""A report's period: months, quarters and runs of local days, their instants in
their time zone, the period before, and text that names none."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from callcenter.reports.period import PeriodError, last_month, parse_period


def test_a_month_in_shanghai_begins_at_the_local_midnight() -> None:
    p = parse_period("2026-11", "Asia/Shanghai")
    assert (p.label, p.first, p.end_day, len(p.days)) == ("2026-11", date(2026, 11, 1),
                                                          date(2026, 12, 1), 30)  # fmt: skip
    assert p.start.astimezone(UTC) == datetime(2026, 10, 31, 16, tzinfo=UTC)
    assert p.end.astimezone(UTC) == datetime(2026, 11, 30, 16, tzinfo=UTC)
    assert p.previous().label == "2026-10"
    assert parse_period("2026-01", "UTC").previous().label == "2025-12"


def test_quarters_and_runs_of_days() -> None:
    q = parse_period("2026-q4", "UTC")
    assert (q.label, q.first, q.end_day) == ("2026-Q4", date(2026, 10, 1), date(2027, 1, 1))
    assert q.previous().label == "2026-Q3" and parse_period("2026-Q1", "UTC").previous().label == (
        "2025-Q4")  # fmt: skip
    d = parse_period(None, "UTC", start="2026-11-05", end="2026-11-20")
    assert (d.label, len(d.days)) == ("2026-11-05..2026-11-20", 16)
    before = d.previous()
    assert (before.first, before.end_day) == (date(2026, 10, 20), date(2026, 11, 5))
    assert len(parse_period(None, "UTC", start="2024-01-01", end="2025-12-31").days) == 731


def test_a_day_that_changes_the_clock_is_one_local_day() -> None:
    # New York's clocks go back on November 1, 2026: a day of 25 hours.
    p = parse_period(None, "America/New_York", start="2026-11-01", end="2026-11-01")
    # (Aware times of one zone subtract as wall times: compare the instants in UTC.)
    assert (p.end.astimezone(UTC) - p.start.astimezone(UTC)).total_seconds() == 25 * 3600


def test_the_last_month_over_is_read_on_the_local_calendar() -> None:
    # December 1, 00:30 in Shanghai is still November 30 in UTC.
    now = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)
    assert last_month(now, "Asia/Shanghai").label == "2026-11"
    assert last_month(now, "UTC").label == "2026-10"


@pytest.mark.parametrize(
    ("text", "start", "end", "zone", "says"),
    [
        ("2026-00", None, None, "UTC", "no month"),
        ("2026-Q5", None, None, "UTC", "neither a month"),
        ("0001-01", None, None, "UTC", "no month"),
        ("", None, None, "UTC", "give a period"),
        (None, "2026-11-01", None, "UTC", "both a start and an end"),
        (None, "2026-11-31", "2026-12-01", "UTC", "not ISO dates"),
        (None, "2026-11-02", "2026-11-01", "UTC", "before it begins"),
        (None, "2024-01-01", "2026-01-01", "UTC", "at most 731"),
        ("2026-11", "2026-11-01", "2026-11-02", "UTC", "not both"),
        ("2026-11", None, None, "Nowhere/Else", "not an IANA time zone"),
        ("2026-11", None, None, "", "not an IANA time zone"),
    ],
)
def test_text_that_names_no_period_is_refused_saying_why(
    text: str | None, start: str | None, end: str | None, zone: str, says: str
) -> None:
    with pytest.raises(PeriodError, match=says):
        parse_period(text, zone, start=start, end=end)
