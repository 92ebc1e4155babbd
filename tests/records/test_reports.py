"""The managers' report from the records (issue 21): a fixture month whose calls
cross the Asia/Shanghai day boundary, with every figure known; the same records
read in UTC give another month; the CSV carries the figures."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from callcenter.acd.events import (
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallClosed,
    CallEnded,
    CallFailed,
    CallOffered,
    CallQueued,
    OfferEnded,
    TargetBreached,
)
from callcenter.records.forms import CallForm, save_form
from callcenter.records.migrate import apply_migrations
from callcenter.records.reports import CATEGORIES, gather
from callcenter.records.stats import agent_stats
from callcenter.records.store import Store, to_record
from callcenter.reports.csv import render_csv
from callcenter.reports.period import parse_period

SHANGHAI = "Asia/Shanghai"
NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
CALLER = "+8613812345678"


def z(text: str) -> float:
    """A UTC time as wall seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def answered(cid: str, queue: str, agent: str, answer: float, rings: int, leg_rings: int,
             within: bool) -> list[object]:  # fmt: skip
    return [
        CallQueued(cid, queue, CALLER, 1),
        CallOffered(cid, queue, agent, f"{cid}-{agent}", CALLER, None, 1),
        CallAnswered(cid, queue, agent, f"{cid}-{agent}", answer, rings, leg_rings, within),
    ]


# (UTC time of the first event, the call's events one second apart)
CALLS: list[tuple[str, list[object]]] = [
    # October 31, 23:59:50 in Shanghai: October's.
    ("2026-10-31T15:59:50", answered("oct", "hotline", "a1", 4.0, 1, 1, True)),
    # November 1, 00:00 in Shanghai (still October 31 in UTC): answered at ring 1 by
    # a1, who hangs up after 60 s and wraps up for 10 s.
    ("2026-10-31T16:00:00", [*answered("c2", "hotline", "a1", 4.0, 1, 1, True),
        CallEnded("c2", "hotline", "a1", "agent", 60.0, 4.0, "c2-a1"),
        AgentStateChanged("a1", "ready", "wrap-up", None, 10.0)]),
    # November 1, 10:00: answered at ring 3 (a2's phone rang three times).
    ("2026-11-01T02:00:00", [*answered("c3", "hotline", "a2", 12.0, 3, 3, True),
        CallEnded("c3", "hotline", "a2", "caller", 30.0, 12.0, "c3-a2")]),
    # November 1, 10:30: a short abandon.
    ("2026-11-01T02:30:00", [CallQueued("c4", "hotline", CALLER, 1),
        CallAbandoned("c4", "hotline", 2.0, 1, "queued", None, True)]),
    # November 2, 00:30: past three rings, then abandoned at 20 s.
    ("2026-11-01T16:30:00", [CallQueued("c5", "hotline", CALLER, 1),
        TargetBreached("c5", "hotline", 3, "ring-all"),
        CallAbandoned("c5", "hotline", 20.0, 4, "queued", None, False)]),
    # November 2, 09:00: abandoned at 8 s, within three rings.
    ("2026-11-02T01:00:00", [CallQueued("c6", "hotline", CALLER, 1),
        CallAbandoned("c6", "hotline", 8.0, 2, "queued", None, False)]),
    # November 2, 09:10: a1 lets it ring; a2 answers at ring 4 (its phone's ring 2).
    ("2026-11-02T01:10:00", [CallQueued("c7", "hotline", CALLER, 1),
        CallOffered("c7", "hotline", "a1", "c7-a1", CALLER, None, 1),
        OfferEnded("c7", "a1", "c7-a1", "missed", 2, 10.0),
        TargetBreached("c7", "hotline", 3, "ring-all"),
        CallOffered("c7", "hotline", "a2", "c7-a2", CALLER, None, 3),
        CallAnswered("c7", "hotline", "a2", "c7-a2", 17.0, 4, 2, False),
        CallEnded("c7", "hotline", "a2", "caller", 100.0, 17.0, "c7-a2")]),
    # November 2, 09:20: the PBX's ring timer ends it after 30 s.
    ("2026-11-02T01:20:00", [CallQueued("c8", "hotline", CALLER, 1),
        CallFailed("c8", "hotline", "pbx-timeout", 30.0, 6, "queued")]),
    # November 2, 21:00: the queue is closed.
    ("2026-11-02T13:00:00", [CallClosed("c9", "hotline", CALLER, "closed", "reject", "")]),
    # November 30, 23:59 in sales: answered at ring 1 by a2, still talking.
    ("2026-11-30T15:59:00", answered("c11", "sales", "a2", 3.0, 1, 1, True)),
    # December 1, 00:00 in Shanghai (still November 30 in UTC): December's.
    ("2026-11-30T16:00:00", answered("dec", "hotline", "a1", 4.0, 1, 1, True)),
    # December 1, 10:00 in Shanghai: a1, ready since November 1, goes to lunch.
    ("2026-12-01T02:00:00", [AgentStateChanged("a1", "not-ready", "ready", "lunch", 0.0)]),
]  # fmt: skip


def form(fid: str, call_id: str | None, agent: str, at: str, category: str,
         **more: Any) -> CallForm:  # fmt: skip
    return CallForm(id=fid, call_id=call_id, agent_id=agent, category=category,
                    called_at=datetime.fromisoformat(at).replace(tzinfo=UTC), **more)  # fmt: skip


@pytest.fixture
async def month(database: str) -> asyncpg.Connection:
    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    await conn.execute(
        "INSERT INTO agents (id, name, number, extension) VALUES"
        " ('a1', '李明', '001', '1001'), ('a2', 'Wang Fang', '002', '1002')"
    )
    store = Store(database)
    try:
        for n, (at, events) in enumerate(CALLS):
            t0 = z(at)
            await store.write(
                [to_record("b", 100 * n + i, t0 + i, e) for i, e in enumerate(events)]
            )
    finally:
        await store.close()
    for f in (
        form("form-oct-1", "oct", "a1", "2026-10-31T15:59:59", "inquiry"),
        form("form-oct-2", None, "a1", "2026-10-05T03:00:00", "inquiry"),
        form("form-c2-a1", "c2", "a1", "2026-10-31T16:00:00", "inquiry",
             satisfaction_asked=True, satisfaction_score=5),
        form("form-c3-a2", "c3", "a2", "2026-11-01T02:00:00", "complaint",
             complaint_matter="The bill is wrong", satisfaction_asked=True),
        form("form-sug-a2", None, "a2", "2026-11-10T02:00:00", "suggestion",
             service_requested="Open on Sundays"),
        # The other end of November in Shanghai: 23:59:59 on the 30th, then December 1 00:00.
        form("form-nov-30", None, "a2", "2026-11-30T15:59:59", "repair"),
        form("form-dec-1", None, "a1", "2026-11-30T16:00:00", "other"),
    ):  # fmt: skip
        await save_form(conn, f, offered=True)
    yield conn
    await conn.close()


async def test_a_month_in_shanghai_counts_every_figure_on_local_days(
    month: asyncpg.Connection,
) -> None:
    period = parse_period("2026-11", SHANGHAI)
    report = await gather(month, period, NOW)
    c = report.centre
    assert (c.offered, c.answered, c.answered_within_target, c.abandoned, c.short_abandons,
            c.abandoned_within_target, c.failed, c.closed, c.no_agent) == (
        8, 4, 3, 3, 1, 2, 1, 1, 0)  # fmt: skip
    assert c.service_level == pytest.approx(3 / 7)  # short abandons out of the base
    assert c.asterisk_sl == pytest.approx(3 / 4)
    assert c.asterisk_sl2 == pytest.approx(5 / 7)  # (3 + 2) / (4 + 3)
    assert c.abandonment_rate == pytest.approx(2 / 7)
    assert c.asa_seconds == pytest.approx((4 + 12 + 17 + 3) / 4)
    assert c.longest_wait_seconds == 30.0  # the failed call's
    assert [(q.queue, q.offered, q.answered) for q in report.queues] == [
        ("hotline", 7, 3), ("sales", 1, 1)]  # fmt: skip

    days = {d.isoformat(): f for d, f in report.by_day}
    assert len(days) == 30 and min(days) == "2026-11-01" and max(days) == "2026-11-30"
    assert (days["2026-11-01"].offered, days["2026-11-01"].answered) == (3, 2)
    assert (days["2026-11-02"].offered, days["2026-11-02"].closed) == (4, 1)
    assert (days["2026-11-30"].offered, days["2026-11-03"].offered) == (1, 0)
    hours = dict(report.by_hour)
    assert [hours[h].offered for h in (0, 9, 10, 21, 23)] == [2, 3, 2, 0, 1]
    assert hours[21].closed == 1
    assert report.rings == [2, 0, 1, 1, 0, 0, 0]  # rings 1, 1, 3, 4
    # Each queue's days and hours: every day and hour, the queue's calls only.
    queue_days = {(q, d.isoformat()): f for q, d, f in report.queue_days}
    assert len(queue_days) == 2 * 30 and len(report.queue_hours) == 2 * 24
    assert (queue_days["sales", "2026-11-30"].offered, queue_days["hotline", "2026-11-30"].offered,
            queue_days["hotline", "2026-11-01"].offered) == (1, 0, 3)  # fmt: skip
    for d in period.days:
        assert sum(queue_days[q, d.isoformat()].offered for q in ("hotline", "sales")) == (
            days[d.isoformat()].offered
        )
    queue_hours = {(q, h): f for q, h, f in report.queue_hours}
    assert (queue_hours["sales", 23].answered, queue_hours["hotline", 23].offered) == (1, 0)
    assert [queue_hours["hotline", h].offered for h in (0, 9, 10)] == [2, 3, 2]

    a1, a2 = report.agents
    assert (a1.agent_id, a1.name, a1.handled, a1.missed, a1.answered_ring_1_2) == (
        "a1", "李明", 1, 1, 1)  # fmt: skip
    assert (a1.finished, a1.talk_seconds, a1.wrap_up_seconds, a1.hung_up_first) == (
        1, 60.0, 10.0, 1)  # fmt: skip
    assert a1.aht_seconds == 70.0 and a1.records_missing == 0
    assert (a1.satisfaction_asked, a1.satisfaction_mean) == (1, 5.0)
    assert (a2.handled, a2.missed, a2.answered_ring_1_2, a2.finished, a2.talk_seconds) == (
        3, 0, 2, 2, 130.0)  # fmt: skip
    assert (a2.hung_up_first, a2.records_missing, a2.satisfaction_asked) == (0, 2, 1)
    assert a2.satisfaction_mean is None and a2.wrap_up_mean_seconds is None
    # a1 was ready from 00:00:04 on November 1 (after c2's wrap-up) until lunch on
    # December 1: all November long, though no change of theirs came before December.
    assert (a1.pause_seconds, a1.idle_seconds) == (0.0, 30 * 86400 - 4.0)
    # Not ready and idle are the board's (one definition).
    states = {s.agent_id: s for s in await agent_stats(month, period.start, period.end,
                                                      ["a1", "a2"])}  # fmt: skip
    assert (a1.pause_seconds, a1.idle_seconds) == (
        states["a1"].pause_seconds, states["a1"].idle_seconds)  # fmt: skip

    assert (report.complaints.received, report.complaints.by_class["ordinary"]) == (1, 1)
    assert report.complaints.suggestions == 1
    categories = {k.category: (k.count, k.previous, k.change) for k in report.categories}
    assert categories == {"inquiry": (1, 2, -0.5), "complaint": (1, 0, None),
                          "suggestion": (1, 0, None), "repair": (1, 0, None),
                          "other": (0, 0, None)}  # fmt: skip
    # The trend: every local day, every category. November 1 from its first second
    # (October 31 23:59:59 is October's), November 30 to its last (December 1 00:00 is
    # December's).
    trend = dict(report.categories_by_day)
    assert list(trend) == list(period.days)
    assert all(list(n) == list(CATEGORIES) for n in trend.values())
    nonzero = {d.isoformat(): {c: k for c, k in n.items() if k} for d, n in trend.items()
               if any(n.values())}  # fmt: skip
    assert nonzero == {"2026-11-01": {"inquiry": 1, "complaint": 1},
                       "2026-11-10": {"suggestion": 1}, "2026-11-30": {"repair": 1}}  # fmt: skip
    # The centre's satisfaction is the agents' summed: c2's record asked and scored 5, c3's
    # asked with no score.
    assert (report.satisfaction_asked, report.satisfaction_scored, report.satisfaction_mean) == (
        2, 1, 5.0)  # fmt: skip
    assert report.satisfaction_asked == a1.satisfaction_asked + a2.satisfaction_asked
    assert report.notes == []


async def test_the_same_records_in_utc_make_another_month(month: asyncpg.Connection) -> None:
    report = await gather(month, parse_period("2026-11", "UTC"), NOW)
    # c2 is October's in UTC; "dec" is November's.
    assert (report.centre.offered, report.centre.answered) == (8, 4)
    assert report.by_day[0][1].offered == 3  # c3, c4, c5 on November 1 in UTC
    assert report.by_day[-1][1].offered == 2  # c11 and "dec" on November 30 in UTC
    hours = dict(report.by_hour)
    assert (hours[0].offered, hours[16].offered) == (0, 2)  # c5 and "dec" at 16:xx UTC
    assert report.rings == [2, 0, 1, 1, 0, 0, 0]
    assert {k.category: k.count for k in report.categories}["inquiry"] == 0
    # c2's record (November 1 00:00 in Shanghai) is October's in UTC; December 1 00:00 in
    # Shanghai is November 30 in UTC.
    trend = {d.isoformat(): n for d, n in report.categories_by_day}
    assert (trend["2026-11-01"]["inquiry"], trend["2026-11-01"]["complaint"]) == (0, 1)
    assert (trend["2026-11-30"]["repair"], trend["2026-11-30"]["other"]) == (1, 1)
    assert sum(sum(n.values()) for n in trend.values()) == 4  # c3, the suggestion, the two of the 30th


async def test_call_backs_are_counted_on_the_worklists_days(month: asyncpg.Connection) -> None:
    """The worklist's items have the local day of `[callbacks] time_zone`: an abandon at
    16:30 UTC on November 1 (00:30 on the 2nd in Shanghai), reached at 20:00 UTC the same
    UTC day, was reached on its own day when the worklist's days are UTC's."""
    item = await month.fetchval(
        "INSERT INTO callback_items (kind, number, local_day, queue, call_id, owed_since,"
        " max_attempts, status, closed_as, made_at, updated_at) VALUES ('abandoned', $1,"
        " '2026-11-01', 'hotline', 'c5', $2, 3, 'closed', 'reached', $2, $2) RETURNING id",
        CALLER, datetime(2026, 11, 1, 16, 30, tzinfo=UTC),
    )  # fmt: skip
    await month.execute(
        "INSERT INTO callback_attempts (item_id, at, actor, outcome) VALUES ($1, $2, 'a1',"
        " 'reached')", item, datetime(2026, 11, 1, 20, tzinfo=UTC),
    )  # fmt: skip
    period = parse_period("2026-11", SHANGHAI)
    report = await gather(month, period, NOW, callback_zone="UTC")
    cb = report.callbacks
    assert (cb.abandoned, cb.reached, cb.reached_same_day, cb.same_day_rate) == (1, 1, 1, 1.0)
    assert report.notes == ["callbacks-zone:UTC"]
    assert "Call-backs are counted on the days of UTC" in render_csv(report).decode("utf-8-sig")
    # Counted in the report's own zone, the attempt falls on November 2.
    alike = await gather(month, period, NOW, callback_zone=SHANGHAI)
    assert (alike.callbacks.reached_same_day, alike.notes) == (0, [])


async def test_a_period_not_over_says_so(month: asyncpg.Connection) -> None:
    report = await gather(month, parse_period("2026-11", SHANGHAI),
                          datetime(2026, 11, 15, tzinfo=UTC))  # fmt: skip
    assert report.notes == ["period-not-over"]


async def test_the_csv_has_every_section_with_chinese_and_english_labels(
    month: asyncpg.Connection,
) -> None:
    report = await gather(month, parse_period("2026-11", SHANGHAI), NOW)
    data = render_csv(report)
    assert data.startswith(b"\xef\xbb\xbf")  # a BOM, for Excel
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    sections = {rows[i + 1][0] if i + 1 < len(rows) else "" for i, r in enumerate(rows) if not r}
    assert {"全中心 / Whole centre", "坐席统计 / By agent", "来电类别 / Calls by category"} <= (
        sections)  # fmt: skip
    assert rows[2] == ["2026-11", SHANGHAI, "2026-12-07T20:00:00+08:00", ""]
    centre_at = rows.index(["全中心 / Whole centre"])
    centre = dict(zip(rows[centre_at + 1], rows[centre_at + 2], strict=True))
    assert [centre[h] for h in rows[centre_at + 1][:6]] == [
        "8", "4", "3", "0.4286", "0.75", "0.7143"]  # fmt: skip
    assert (centre["满意度询问 / Satisfaction asked"], centre["满意度已评分 / Satisfaction scored"],
            centre["满意度均分 / Satisfaction (mean)"]) == ("2", "1", "5.0")  # fmt: skip
    trend = rows.index(["来电类别每日趋势 / Calls by category by day"])
    assert rows[trend + 1] == ["日期 / Day", "咨询 / Inquiry", "投诉 / Complaint",
                               "建议 / Suggestion", "报修 / Repair", "其他 / Other"]  # fmt: skip
    assert rows[trend + 2] == ["2026-11-01", "1", "1", "0", "0", "0"]
    assert rows[trend + 31] == ["2026-11-30", "0", "0", "0", "1", "0"]
    assert len(rows) == trend + 32  # the last section: its 30 days
    by_agent = rows.index(["坐席统计 / By agent"])
    assert rows[by_agent + 2][:5] == ["a1", "李明", "1", "1", "1"]
