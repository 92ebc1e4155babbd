"""Opening hours and nobody there (issue 19) in the records, against a real PostgreSQL: a
call turned away at arrival is a row of its own outcome (``closed``, ``no-agent``), never
offered; a caller waiting when the queue closes or empties is an overflow; the records'
figures agree with the counters' and the board's (the one fold, acd/kpi.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from callcenter.acd.events import AgentLogout, CallArrived, SetNotReady
from callcenter.acd.queues import Overflow
from callcenter.records.appender import is_recorded
from callcenter.records.stats import queue_stats
from callcenter.records.store import Store, to_record
from tests.acd.test_engine import Floor, queue
from tests.acd.test_hours import at, office
from tests.acd.traffic import T0
from tests.records.test_kpi import (  # noqa: F401
    from_board,
    from_metrics,
    from_records,
    kpi_database,
    same,
)
from tests.records.test_store import conn, rows, store  # noqa: F401  (fixtures)

MONDAY = (2026, 12, 7)


def closing_day() -> list[tuple[float, object]]:
    """The service queue (weekdays 08:30-12:00, 13:00-17:30; closed: to voicemail at 8001;
    nobody there: 480) and the sales queue (always open; nobody there after 30 s: 480)."""
    f = Floor(
        "a1",
        queues=[
            queue(schedule=office(), closed_action=Overflow("number", "8001"), max_wait=3600.0,
                  no_agent_action=Overflow("reject", retry_after=90), no_agent_after=30.0),
            queue(name="sales", numbers=("5000",), group="cs", no_agent_action=Overflow("reject"),
                  no_agent_after=30.0, max_wait=3600.0),
        ],
    )  # fmt: skip
    f.now = at(*MONDAY, 17, 0)
    f.do(SetNotReady("a1", "meeting"))
    f.do(CallArrived("c1", "4000", "13800000001"), at=at(*MONDAY, 17, 0, 10))  # waits
    f.do(CallArrived("c2", "5000", "13800000002"), at=at(*MONDAY, 17, 0, 20))  # waits
    f.until(at(*MONDAY, 17, 0, 40))  # nobody ready for 30 s: both sent on, 480
    f.do(CallArrived("c3", "5000", "13800000003"))  # turned away: nobody there
    f.do(AgentLogout("a1"))
    f.do(CallArrived("c4", "4000", "13800000004"), at=at(*MONDAY, 20))  # turned away: closed
    return [(t, e) for t, e in f.log if is_recorded(e)]


async def test_turned_away_calls_have_their_own_outcome_and_are_not_offered(
    store: Store,  # noqa: F811
    conn: asyncpg.Connection,  # noqa: F811
) -> None:
    events = closing_day()
    await conn.execute("TRUNCATE calls, call_events, ring_attempts, queue_log")
    await store.write([to_record("b", n, t, e) for n, (t, e) in enumerate(events, 1)])
    calls = {r["call_id"]: r for r in (await rows(conn, ["calls"]))["calls"]}
    assert {c: (r["queue"], r["outcome"], r["hotline"]) for c, r in calls.items()} == {
        "c1": ("service", "overflow", "4000"),
        "c2": ("sales", "overflow", "5000"),
        "c3": ("sales", "no-agent", "5000"),
        "c4": ("service", "closed", "4000"),
    }
    assert calls["c4"]["ended_at"].timestamp() == at(*MONDAY, 20)
    assert calls["c4"]["caller_e164"] == "+8613800000004"
    assert calls["c4"]["queue_position"] is None
    # Callers sent on while waiting left the queue (nobody there: EXITEMPTY); the calls
    # turned away at arrival never entered it.
    lines = await conn.fetch(
        "SELECT callid, event FROM queue_log WHERE callid <> 'NONE' ORDER BY callid, event"
    )
    assert [tuple(r) for r in lines] == [
        ("c1", "ENTERQUEUE"), ("c1", "EXITEMPTY"), ("c2", "ENTERQUEUE"), ("c2", "EXITEMPTY"),
    ]  # fmt: skip
    day = datetime(2026, 12, 7, tzinfo=UTC)
    stats = {s.queue: s for s in await queue_stats(conn, day, datetime(2026, 12, 8, tzinfo=UTC))}
    service, sales = stats["service"], stats["sales"]
    assert (service.offered, service.overflowed, service.closed, service.no_agent) == (1, 1, 1, 0)
    assert (sales.offered, sales.overflowed, sales.closed, sales.no_agent) == (1, 1, 0, 1)


async def test_the_counters_the_board_and_the_records_agree_on_a_closing_day(
    kpi_database: str,  # noqa: F811
) -> None:
    # On the day test_kpi's readers read (from T0, midnight UTC), keeping the times of day.
    shift = T0 - datetime(*MONDAY, tzinfo=UTC).timestamp()
    history = [("run1", t + shift, e) for t, e in closing_day()]
    metrics, board = from_metrics(history), from_board(history)
    records, report = await from_records(kpi_database, history)
    assert same(metrics, board), (metrics, board)  # the board has no abandons within the target
    assert metrics == records == report
    assert metrics["service"][0] == metrics["sales"][0] == 1  # offered: the callers who waited
