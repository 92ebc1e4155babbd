"""A queue's opening hours (pure): weekly hours, holidays, make-up working days, dated exceptions.

Theory of operation
-------------------
A `Schedule` answers two questions about an instant (seconds since the Unix
epoch, the wall clock: opening hours are a matter of the calendar, not of the
monotonic clock the ACD's deadlines run on): is the queue open then
(`is_open`), and when does that next change (`next_change`)?

Hours are local to the schedule's time zone (an IANA name, "Asia/Shanghai" by
default) and are given per day as intervals of minutes since local midnight,
``[start, end)``. An interval that ends at or before its start runs past
midnight ("22:00-06:00": until 06:00 the next morning; "08:00-08:00": 24
hours), and belongs to the day it starts on: ``end`` is then above 1440.
Which intervals apply on a day is decided in this order, the first that has
something to say wins:

1. a dated exception (`exceptions`): the hours of that date, none for a day
   closed all day;
2. a holiday (`holidays`): closed all day;
3. a make-up working day (`workdays`, China's 调休: a Saturday or Sunday
   worked in exchange for a holiday): the hours of `workday_hours`;
4. the weekly hours of that weekday (`weekly`, Monday first).

The holiday and make-up working dates come from a maintained calendar, read
by an adapter outside this module (`callcenter.holidays`); for a year the
calendar has no data for, both sets are empty and the weekly hours and the
dated exceptions apply alone (docs/acd.md, "Opening hours and nobody there").
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "INTERVAL_PATTERN", "WEEKDAYS", "Hours", "Schedule", "format_hours", "parse_hours", "zone",
]  # fmt: skip

#: The weekdays' names in the settings, Monday first (as `date.weekday()` counts).
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

#: One day's opening hours: ``(start, end)`` minutes since local midnight, in order.
Hours = tuple[tuple[int, int], ...]

#: How far ahead `next_change` looks: longer than any holiday run (China's
#: longest, the Spring Festival, is nine days) with room for dated exceptions.
HORIZON_DAYS = 62

#: An interval as the settings write it; the OpenAPI document says the same (agent/admin.py).
INTERVAL_PATTERN = r"^([01][0-9]|2[0-3]):([0-5][0-9])-(([01][0-9]|2[0-3]):([0-5][0-9])|24:00)$"
_INTERVAL = re.compile(INTERVAL_PATTERN)


def zone(name: str) -> ZoneInfo:
    """The time zone called `name`; ValueError naming it if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"no time zone named {name!r} (an IANA name: 'Asia/Shanghai')") from exc


def parse_hours(specs: list[str] | tuple[str, ...]) -> Hours:
    """``["08:30-12:00", "13:00-17:30"]`` -> ``((510, 720), (780, 1050))``.

    An interval ending at or before its start runs past midnight
    (``"22:00-06:00"`` -> ``(1320, 1800)``); intervals that overlap or touch
    are one. ValueError says which one is not an interval."""
    out: list[tuple[int, int]] = []
    for spec in specs:
        m = _INTERVAL.fullmatch(spec)
        if m is None:
            raise ValueError(f"{spec!r} is not an interval like '08:30-17:30'")
        start = int(m.group(1)) * 60 + int(m.group(2))
        h2, m2 = m.group(3).split(":")
        end = int(h2) * 60 + int(m2)
        if end <= start:
            end += 1440  # past midnight
        out.append((start, end))
    out.sort()
    merged: list[tuple[int, int]] = []
    for start, end in out:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


def format_hours(hours: Hours) -> list[str]:
    """The inverse of `parse_hours`."""
    return [f"{_hhmm(s)}-{_hhmm(e if e <= 1440 else e - 1440)}" for s, e in hours]


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@dataclass(frozen=True, slots=True)
class Schedule:
    """See the module docstring."""

    timezone: str = "Asia/Shanghai"
    weekly: tuple[Hours, ...] = ((), (), (), (), (), (), ())  # Monday first
    holidays: frozenset[dt.date] = frozenset()
    workdays: frozenset[dt.date] = frozenset()  # make-up working days (调休)
    workday_hours: Hours = ()  # the hours of a make-up working day
    exceptions: dict[dt.date, Hours] = field(default_factory=dict)  # () = closed all day

    def __post_init__(self) -> None:
        zone(self.timezone)
        if len(self.weekly) != 7:
            raise ValueError("weekly hours need seven days, Monday first")

    def hours_on(self, day: dt.date) -> Hours:
        """The opening hours that apply on `day` (local date)."""
        hours = self.exceptions.get(day)
        if hours is not None:
            return hours
        if day in self.holidays:
            return ()
        if day in self.workdays:
            return self.workday_hours
        return self.weekly[day.weekday()]

    def is_open(self, now: float) -> bool:
        """Open at `now` (seconds since the Unix epoch)?"""
        local = dt.datetime.fromtimestamp(now, zone(self.timezone))
        second = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        today = local.date()
        if any(start * 60 <= second < end * 60 for start, end in self.hours_on(today)):
            return True
        # The day before's hours that run past midnight.
        second += 86400
        yesterday = today - dt.timedelta(days=1)
        return any(start * 60 <= second < end * 60 for start, end in self.hours_on(yesterday))

    def next_change(self, now: float) -> float | None:
        """The first instant after `now` when `is_open` changes; None if it does not
        within `HORIZON_DAYS` (a queue open around the clock, or closed for good)."""
        tz = zone(self.timezone)
        open_now = self.is_open(now)
        first = dt.datetime.fromtimestamp(now, tz).date()
        for offset in range(-1, HORIZON_DAYS + 1):  # the day before: hours past midnight
            day = first + dt.timedelta(days=offset)
            midnight = dt.datetime(day.year, day.month, day.day, tzinfo=tz)
            # A change can only happen at midnight or at an interval's edge (one past
            # midnight lands on the next day: minutes are added to this one's).
            edges = {0}
            for start, end in self.hours_on(day):
                edges.add(start)
                edges.add(end)
            for minute in sorted(edges):
                at = (midnight + dt.timedelta(minutes=minute)).timestamp()
                if at > now and self.is_open(at) is not open_now:
                    return at
        return None

    def seconds_to_change(self, now: float) -> float | None:
        """Seconds from `now` to `next_change` (None: none known)."""
        change = self.next_change(now)
        return None if change is None else change - now
