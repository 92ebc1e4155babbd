"""China's statutory holidays and make-up working days (调休), from the chinese-calendar package.

The adapter between that package and the pure `acd.schedule.Schedule`: it
reads the holidays and the make-up working days (the Saturdays and Sundays
worked in exchange) of the years asked for. The package has the dates only
of the years the State Council has published (it raises
`NotImplementedError` for the others): such a year is logged once, counted
(`missing_years`, the gauge ``callcenter_holiday_calendar_missing_years``),
and left out, so that the queue keeps its weekly hours and its dated
exceptions for it (docs/acd.md, "Opening hours and nobody there").
docs/decisions/0009-opening-hours.md says why this package.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import chinese_calendar
import structlog

__all__ = ["cn_calendar", "missing_years"]

log = structlog.get_logger("callcenter.holidays")

_missing: set[int] = set()


def missing_years() -> int:
    """How many of the years asked for so far the calendar has no data for."""
    return len(_missing)


def cn_calendar(years: Iterable[int]) -> tuple[frozenset[dt.date], frozenset[dt.date]]:
    """(holidays, make-up working days) of `years` in mainland China."""
    holidays: set[dt.date] = set()
    workdays: set[dt.date] = set()
    for year in sorted(set(years)):
        day = dt.date(year, 1, 1)
        try:
            chinese_calendar.get_holiday_detail(day)
        except NotImplementedError as exc:
            if year not in _missing:
                _missing.add(year)
                log.warning(
                    "no holiday calendar for this year: weekly hours and dated exceptions only",
                    year=year,
                    detail=str(exc),
                )
            continue
        while day.year == year:
            rest, name = chinese_calendar.get_holiday_detail(day)
            if name is not None:  # a statutory holiday, or a day worked in lieu of one
                (holidays if rest else workdays).add(day)
            day += dt.timedelta(days=1)
    return frozenset(holidays), frozenset(workdays)
