"""Opening hours and nobody there (issue 19): the schedule, and what the ACD does with
callers arriving at or waiting in a closed or empty queue, on a fake clock that is the
wall clock (seconds since the epoch)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from callcenter.acd.errors import UnknownQueue
from callcenter.acd.events import (
    AgentLogin,
    AgentLogout,
    CallAnswered,
    CallArrived,
    CallClosed,
    CallOffered,
    CallOverflowed,
    CallQueued,
    LegAnswered,
    LegRinging,
    RedirectCall,
    RejectCall,
    SetNotReady,
    SetReady,
)
from callcenter.acd.queues import Overflow
from callcenter.acd.schedule import Schedule, format_hours, parse_hours
from callcenter.holidays import cn_calendar
from callcenter.settings import ScheduleSettings
from tests.acd.test_engine import Floor, queue

BEIJING = ZoneInfo("Asia/Shanghai")


def at(y: int, mo: int, d: int, h: int, mi: int = 0, s: int = 0) -> float:
    """Seconds since the epoch of a Beijing time."""
    return dt.datetime(y, mo, d, h, mi, s, tzinfo=BEIJING).timestamp()


OFFICE = ["08:30-12:00", "13:00-17:30"]


def office(**kw: Any) -> Schedule:
    """Weekdays 08:30-12:00 and 13:00-17:30 Beijing time, China's holidays of 2026."""
    settings = ScheduleSettings(mon=OFFICE, tue=OFFICE, wed=OFFICE, thu=OFFICE, fri=OFFICE, **kw)
    return settings.schedule((2026,))


def floor_at(t: float, *agents: str, **qkw: Any) -> Floor:
    """A Floor whose agents logged in and went ready at `t`."""
    f = Floor(queues=[queue(**qkw)])
    for a in agents:
        f.acd.upsert_agent(a, f"Agent {a}", a[-3:], f"1{a}", {"cs": 1})
    f.now = t
    for a in agents:
        f.do(AgentLogin(a))
        f.do(SetReady(a))
    return f


# -- the schedule ----------------------------------------------------------------------------


def test_hours_parse_and_refuse_what_is_not_an_interval() -> None:
    assert parse_hours(["13:00-17:30", "08:30-12:00"]) == ((510, 720), (780, 1050))
    assert format_hours(parse_hours(OFFICE)) == OFFICE
    assert parse_hours(["00:00-24:00"]) == ((0, 1440),)
    # Past midnight, 24 hours, and intervals that overlap or touch: one.
    assert parse_hours(["22:00-06:00"]) == ((1320, 1800),)
    assert format_hours(parse_hours(["22:00-06:00"])) == ["22:00-06:00"]
    assert parse_hours(["08:00-08:00"]) == ((480, 1920),)
    assert parse_hours(["08:00-12:00", "11:00-13:00", "13:00-14:00"]) == ((480, 840),)
    for bad in ["8:30-17:30", "08:60-09:00", "24:00-08:00", "08:00-24:01", "08:00-17:00\n",
                " 08:00-17:00", "０８:00-17:00"]:  # fmt: skip
        with pytest.raises(ValueError, match="is not an interval"):
            parse_hours([bad])
    with pytest.raises(ValueError, match="no time zone named 'Mars/Olympus'"):
        Schedule(timezone="Mars/Olympus")


def test_hours_past_midnight_belong_to_the_day_they_start() -> None:
    # Fridays 20:00 to 02:00: open early on Saturday, not early on Friday.
    s = ScheduleSettings(fri=["20:00-02:00"], holidays="none").schedule(())
    assert s.is_open(at(2026, 12, 11, 23)) and s.is_open(at(2026, 12, 12, 1, 59))
    assert not s.is_open(at(2026, 12, 12, 2)) and not s.is_open(at(2026, 12, 11, 1))
    assert s.next_change(at(2026, 12, 11, 23)) == at(2026, 12, 12, 2)
    assert s.next_change(at(2026, 12, 12, 3)) == at(2026, 12, 18, 20)


def test_weekday_hours_in_beijing_time() -> None:
    s = office()
    monday = (2026, 12, 7)  # a Monday, no holiday
    assert not s.is_open(at(*monday, 8, 29, 59))
    assert s.is_open(at(*monday, 8, 30))
    assert not s.is_open(at(*monday, 12, 30))  # lunch
    assert s.is_open(at(*monday, 17, 29, 59))
    assert not s.is_open(at(*monday, 17, 30))
    assert not s.is_open(at(*monday, 20))
    assert s.next_change(at(*monday, 17)) == at(*monday, 17, 30)
    assert s.next_change(at(*monday, 20)) == at(2026, 12, 8, 8, 30)
    # Friday evening: open again on Monday.
    assert s.next_change(at(2026, 12, 11, 18)) == at(2026, 12, 14, 8, 30)


def test_china_holidays_and_make_up_working_days() -> None:
    s = office()
    assert not s.is_open(at(2026, 10, 1, 10))  # National Day, a Thursday
    assert not s.is_open(at(2026, 10, 7, 10))  # the holiday's last day, a Wednesday
    assert s.is_open(at(2026, 10, 10, 10))  # a Saturday worked in lieu (调休)
    assert not s.is_open(at(2026, 10, 11, 10))  # the Sunday after: an ordinary weekend
    assert s.next_change(at(2026, 9, 30, 18)) == at(2026, 10, 8, 8, 30)
    # Without China's calendar, 1 October is an ordinary Thursday.
    assert office(holidays="none").is_open(at(2026, 10, 1, 10))


def test_dated_exceptions_win() -> None:
    s = office(exceptions={dt.date(2026, 12, 24): ["09:00-12:00"], dt.date(2026, 10, 1): OFFICE})
    assert not s.is_open(at(2026, 12, 24, 8, 45)) and s.is_open(at(2026, 12, 24, 9))
    assert not s.is_open(at(2026, 12, 24, 14))
    assert s.is_open(at(2026, 10, 1, 10))  # opened on a holiday
    closed = office(exceptions={dt.date(2026, 12, 7): []})
    assert not closed.is_open(at(2026, 12, 7, 10))


def test_a_year_without_calendar_data_keeps_the_weekly_hours() -> None:
    holidays, workdays = cn_calendar([2099])
    assert holidays == workdays == frozenset()
    s = ScheduleSettings(mon=OFFICE, thu=OFFICE).schedule((2099,))
    assert s.is_open(at(2099, 10, 1, 10))  # a Thursday: no data, so not a holiday


def test_schedule_settings_name_the_wrong_key() -> None:
    with pytest.raises(ValueError, match="mon"):
        ScheduleSettings(mon=["8:30 to 17:30"])
    with pytest.raises(ValueError, match="no time zone"):
        ScheduleSettings(timezone="Beijing")


# -- the ACD: arrival ------------------------------------------------------------------------


def test_a_call_at_20_00_on_a_weekday_gets_the_closed_action() -> None:
    f = floor_at(at(2026, 12, 7, 19), "a1", schedule=office())
    out = f.do(CallArrived("c1", "4000", "13812345678"), at=at(2026, 12, 7, 20))
    # 480, Retry-After: until 08:30 the next morning; never queued nor offered.
    assert out == [
        CallClosed("c1", "service", "13812345678", "closed", "reject", "", "4000"),
        RejectCall("c1", 480, 12 * 3600 + 30 * 60),
    ]
    assert f.acd.next_deadline() is None


def test_a_call_on_national_day_is_closed_and_redirected() -> None:
    action = Overflow("number", "8001")  # the voicemail's number at the PBX
    f = floor_at(at(2026, 10, 1, 9), "a1", schedule=office(), closed_action=action)
    out = f.do(CallArrived("c1", "4000", "1"), at=at(2026, 10, 1, 10))
    assert out == [
        CallClosed("c1", "service", "1", "closed", "number", "8001", "4000"),
        RedirectCall("c1", "8001"),
    ]


def test_a_make_up_saturday_is_open() -> None:
    f = floor_at(at(2026, 10, 10, 9), "a1", schedule=office())
    f.do(CallArrived("c1", "4000", "1"), at=at(2026, 10, 10, 10))
    assert [type(a) for a in f.of(CallQueued) + f.of(CallOffered)] == [CallQueued, CallOffered]
    assert f.of(CallClosed) == []


def test_a_closed_queue_sends_callers_to_another_queue() -> None:
    night = queue(name="night", numbers=("4001",))
    day = queue(schedule=office(), closed_action=Overflow("queue", "night"))
    f = Floor(queues=[day, night])
    f.now = at(2026, 12, 7, 22)
    f.do(CallArrived("c1", "4000", "1"))
    [queued] = f.of(CallQueued)
    assert queued.queue == "night" and queued.hotline == "4000"


def test_a_closed_queue_whose_action_leads_back_rejects() -> None:
    a = queue(name="a", schedule=office(), closed_action=Overflow("queue", "b"))
    b = queue(name="b", numbers=("4001",), schedule=office(), closed_action=Overflow("queue", "a"))
    f = Floor(queues=[a, b])
    f.now = at(2026, 12, 7, 22)
    out = f.do(CallArrived("c1", "4000", "1"))
    assert [type(x) for x in out] == [CallClosed, RejectCall]
    assert out[0].queue == "b"  # type: ignore[union-attr]


# -- the ACD: callers waiting when the queue closes ------------------------------------------


def test_a_caller_waiting_at_17_30_gets_the_closed_action() -> None:
    action = Overflow("number", "8001")
    f = Floor(schedule=office(), closed_action=action, max_wait=3600.0)
    f.now = at(2026, 12, 7, 17, 20)
    f.do(CallArrived("c1", "4000", "1"))  # no agent: it waits
    f.until(at(2026, 12, 7, 17, 29, 59))
    assert f.of(CallOverflowed) == []
    f.until(at(2026, 12, 7, 17, 31))
    assert f.of(CallOverflowed) == [CallOverflowed("c1", "service", "closed", "number", "8001")]
    assert [(t, a) for t, a in f.log if isinstance(a, RedirectCall)] == [
        (at(2026, 12, 7, 17, 30), RedirectCall("c1", "8001"))
    ]
    assert f.acd.waiting_by_queue() == {"service": 0}


def test_a_closing_time_with_nobody_waiting_arms_no_timer() -> None:
    f = floor_at(at(2026, 12, 7, 9), "a1", schedule=office())
    assert f.acd.next_deadline() is None


# -- the ACD: nobody there -------------------------------------------------------------------


def test_an_empty_queue_rejects_at_arrival() -> None:
    f = Floor(no_agent_action=Overflow("reject", retry_after=120))
    out = f.do(CallArrived("c1", "4000", "1"), at=100.0)
    assert out == [
        CallClosed("c1", "service", "1", "no-agent", "reject", "", "4000"),
        RejectCall("c1", 480, 120),
    ]


def test_without_a_no_agent_action_an_empty_queue_still_waits() -> None:
    f = Floor()
    f.do(CallArrived("c1", "4000", "1"), at=100.0)
    assert len(f.of(CallQueued)) == 1 and f.of(CallClosed) == []


def test_agents_all_not_ready_for_n_seconds_send_waiting_callers_on() -> None:
    f = Floor("a1", "a2", no_agent_action=Overflow("number", "8001"), no_agent_after=30.0)
    f.do(SetNotReady("a1", "lunch"), at=10.0)
    f.do(SetNotReady("a2", "meeting"), at=20.0)  # nobody ready from here
    f.do(CallArrived("c1", "4000", "1"), at=25.0)  # within the grace: it waits
    assert len(f.of(CallQueued)) == 1
    f.until(49.9)
    assert f.of(CallOverflowed) == []
    f.until(60.0)
    assert [(t, a) for t, a in f.log if isinstance(a, CallOverflowed | RedirectCall)] == [
        (50.0, CallOverflowed("c1", "service", "no-agent", "number", "8001")),
        (50.0, RedirectCall("c1", "8001")),
    ]
    # And a call arriving now is turned away at once.
    out = f.do(CallArrived("c2", "4000", "2"))
    assert [type(a) for a in out] == [CallClosed, RedirectCall]


def test_an_agent_ready_again_within_the_grace_keeps_the_callers() -> None:
    f = Floor("a1", no_agent_action=Overflow("reject"), no_agent_after=30.0)
    f.do(SetNotReady("a1", "lunch"), at=10.0)
    f.do(CallArrived("c1", "4000", "1"), at=15.0)
    f.do(SetReady("a1"), at=30.0)
    [offer] = f.of(CallOffered)
    f.do(LegRinging("c1", offer.leg_id), at=30.5)
    f.do(LegAnswered("c1", offer.leg_id), at=32.0)
    f.until(100.0)
    assert f.of(CallOverflowed) == []
    assert [a.call_id for a in f.of(CallAnswered)] == ["c1"]


def test_the_last_agent_logging_out_sends_waiting_callers_on_at_once() -> None:
    f = Floor("a1", no_agent_action=Overflow("reject", retry_after=30), no_agent_after=300.0)
    f.do(SetNotReady("a1", "break"), at=1.0)
    f.do(CallArrived("c1", "4000", "1"), at=2.0)
    out = f.do(AgentLogout("a1"), at=3.0)
    assert CallOverflowed("c1", "service", "no-agent", "reject", "") in out
    assert RejectCall("c1", 480, 30) in out


def test_a_queue_whose_actions_name_a_queue_there_is_not_is_refused() -> None:
    f = Floor()
    for key in ("closed_action", "no_agent_action"):
        with pytest.raises(UnknownQueue):
            f.acd.upsert_queue(queue(name="night", **{key: Overflow("queue", "gone")}))
    assert "night" not in f.acd.queues


def test_a_changed_schedule_takes_effect_for_callers_waiting() -> None:
    f = Floor(max_wait=3600.0)
    f.now = at(2026, 12, 7, 17, 20)
    f.do(CallArrived("c1", "4000", "1"))
    f.acd.upsert_queue(queue(schedule=office(), max_wait=3600.0))  # hours from now on
    f.until(at(2026, 12, 7, 17, 31))
    assert f.of(CallOverflowed) == [CallOverflowed("c1", "service", "closed", "reject", "")]


def test_a_year_without_data_is_logged_once_and_counted_on_metrics() -> None:
    from prometheus_client import CollectorRegistry
    from structlog.testing import capture_logs

    from callcenter.metrics.calls import HolidayCalendarCollector

    registry = CollectorRegistry()
    registry.register(HolidayCalendarCollector())
    before = registry.get_sample_value("callcenter_holiday_calendar_missing_years")
    assert before is not None
    with capture_logs() as logs:
        cn_calendar([2098, 2026])  # 2098: asked for by no other test
        cn_calendar([2098])
    assert [e["year"] for e in logs] == [2098]
    assert registry.get_sample_value("callcenter_holiday_calendar_missing_years") == before + 1


# -- the supervisors' board ------------------------------------------------------------------


def test_the_board_shows_closed_and_no_agent_and_counts_the_calls_turned_away() -> None:
    from callcenter.agent.board import FloorTally

    service = queue(schedule=office(), no_agent_action=Overflow("reject"), no_agent_after=30.0)
    sales = queue(name="sales", numbers=("5000",), no_agent_action=Overflow("reject"))
    f = Floor(queues=[service, sales])
    f.acd.upsert_agent("a1", "Agent a1", "001", "1a1", {"cs": 1})
    f.now = at(*MONDAY, 9)
    f.do(AgentLogin("a1"))
    f.do(SetReady("a1"))
    tally = FloorTally(at(*MONDAY, 0))
    tally.queue_configs.update(f.acd.queues)

    def board(now: float) -> dict[str, tuple[str, int, int, int]]:
        snapshot = f.acd.snapshot(f.now)
        out = tally.figures(snapshot, now).queues
        return {q.name: (q.status, q.today.offered, q.today.closed, q.today.no_agent) for q in out}

    assert board(f.now) == {"service": ("open", 0, 0, 0), "sales": ("open", 0, 0, 0)}
    f.do(SetNotReady("a1", "lunch"), at=at(*MONDAY, 12))
    f.until(at(*MONDAY, 12, 0, 29))
    assert board(f.now)["sales"][0] == "open"  # not ready for 29 s: still there
    f.until(at(*MONDAY, 12, 1))
    f.do(CallArrived("c1", "5000", "1"))  # turned away: nobody there
    f.do(CallArrived("c2", "4000", "2"), at=at(*MONDAY, 20))  # turned away: closed
    for t, event in f.log:
        tally.observe(event, t)
    assert board(f.now) == {"service": ("closed", 0, 1, 0), "sales": ("no-agent", 0, 0, 1)}


MONDAY = (2026, 12, 7)


def test_hours_changed_to_closed_now_send_waiting_callers_on_at_once() -> None:
    f = Floor(max_wait=3600.0)
    f.now = at(2026, 12, 7, 21)
    f.do(CallArrived("c1", "4000", "1"))  # always open: it waits
    # Opening hours from now on, closed at 21:00; and closed for longer than next_change
    # looks ahead: the callers go at the next input, not at max_wait.
    closed = ScheduleSettings(holidays="none").schedule(())
    f.acd.upsert_queue(queue(schedule=closed, max_wait=3600.0))
    out = f.until(at(2026, 12, 7, 21, 0, 5))
    assert CallOverflowed("c1", "service", "closed", "reject", "") in out
