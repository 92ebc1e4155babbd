"""A report's period: a month (``2026-11``), a quarter (``2026-Q4``) or any run of
local days, in one time zone. Pure: no clock, no I/O.

A period is the local days [first, end) of its zone; its instants are the local
midnights that begin and end them (`start`, `end`), so a month in Asia/Shanghai
begins at 16:00 UTC on the previous day. `previous` is the period of the same
kind just before it (the month before, the quarter before, or as many days
before a run of days), the base of the month-on-month changes.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

__all__ = [
    "MAX_DAYS",
    "Period",
    "PeriodError",
    "days",
    "last_month",
    "month",
    "parse_period",
    "quarter",
    "zone_names",
]

#: The longest period a report covers (two years and a leap day).
MAX_DAYS = 731

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-[Qq]([1-4])$")


class PeriodError(ValueError):
    """The text names no period, or one out of bounds; the message says which."""


@dataclass(frozen=True, slots=True)
class Period:
    kind: str  # "month", "quarter", "days"
    first: date  # the first local day
    end_day: date  # the local day after the last
    zone: str  # an IANA time zone

    @property
    def label(self) -> str:
        """``2026-11``, ``2026-Q4`` or ``2026-11-05..2026-11-20`` (both days included)."""
        if self.kind == "month":
            return f"{self.first:%Y-%m}"
        if self.kind == "quarter":
            return f"{self.first.year}-Q{(self.first.month - 1) // 3 + 1}"
        return f"{self.first.isoformat()}..{(self.end_day - timedelta(days=1)).isoformat()}"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.zone)

    @property
    def start(self) -> datetime:
        """The local midnight that begins the first day (aware)."""
        return datetime.combine(self.first, time(), self.tz)

    @property
    def end(self) -> datetime:
        """The local midnight that ends the last day (aware)."""
        return datetime.combine(self.end_day, time(), self.tz)

    @property
    def days(self) -> list[date]:
        n = (self.end_day - self.first).days
        return [self.first + timedelta(days=i) for i in range(n)]

    def previous(self) -> Period:
        if self.kind == "month":
            before = self.first - timedelta(days=1)
            return month(before.year, before.month, self.zone)
        if self.kind == "quarter":
            before = self.first - timedelta(days=1)
            return quarter(before.year, (before.month - 1) // 3 + 1, self.zone)
        length = self.end_day - self.first
        return Period("days", self.first - length, self.first, self.zone)


def month(year: int, number: int, zone: str) -> Period:
    first = date(year, number, 1)
    end = date(year + 1, 1, 1) if number == 12 else date(year, number + 1, 1)
    return Period("month", first, end, zone)


def quarter(year: int, number: int, zone: str) -> Period:
    first = date(year, 3 * number - 2, 1)
    end = date(year + 1, 1, 1) if number == 4 else date(year, 3 * number + 1, 1)
    return Period("quarter", first, end, zone)


@functools.cache
def zone_names() -> frozenset[str]:
    """The IANA time zones a period may be in: the system's (or tzdata's) that
    PostgreSQL knows too (not the files "localtime" and "posixrules", nor the
    "posix/" and "right/" copies). Read from the disk once."""
    return frozenset(
        z for z in available_timezones()
        if z not in ("localtime", "posixrules") and not z.startswith(("posix/", "right/"))
    ) | {"UTC"}  # fmt: skip


def _checked(zone: str) -> str:
    if zone not in zone_names():
        raise PeriodError(f"{zone!r} is not an IANA time zone (e.g. Asia/Shanghai)")
    return zone


def days(first: date, last: date, zone: str) -> Period:
    """The local days `first` to `last`, both included."""
    _checked(zone)
    if first.year < 1970 or last.year > 9998:
        raise PeriodError("the days must lie between 1970 and 9998")
    if last < first:
        raise PeriodError(f"the period ends ({last}) before it begins ({first})")
    if (last - first).days + 1 > MAX_DAYS:
        raise PeriodError(f"a report covers at most {MAX_DAYS} days")
    return Period("days", first, last + timedelta(days=1), zone)


def parse_period(
    text: str | None, zone: str, *, start: str | None = None, end: str | None = None
) -> Period:
    """``2026-11`` or ``2026-Q4`` as `text`, or the days `start` to `end` (ISO dates,
    both included); exactly one of the two forms."""
    _checked(zone)
    if text and (start or end):
        raise PeriodError("give a period or a start and an end, not both")
    if text:
        if m := _MONTH.match(text):
            year, number = int(m[1]), int(m[2])
            if not 1 <= number <= 12 or not 1970 <= year <= 9998:
                raise PeriodError(f"no month {text!r}")
            return month(year, number, zone)
        if m := _QUARTER.match(text):
            year = int(m[1])
            if not 1970 <= year <= 9998:
                raise PeriodError(f"no quarter {text!r}")
            return quarter(year, int(m[2]), zone)
        raise PeriodError(f"{text!r} is neither a month (2026-11) nor a quarter (2026-Q4)")
    if not (start and end):
        raise PeriodError("give a period (2026-11, 2026-Q4) or both a start and an end day")
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise PeriodError(f"not ISO dates (2026-11-05): {start!r}, {end!r}") from None
    return days(first, last, zone)


def last_month(now: datetime, zone: str) -> Period:
    """The last month that is over at `now` (aware) in `zone`: the one before the
    local month `now` falls in."""
    local = now.astimezone(ZoneInfo(zone))
    return month(local.year, local.month, zone).previous()
