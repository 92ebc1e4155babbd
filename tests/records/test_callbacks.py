"""The call-back worklist on a real PostgreSQL (records/callbacks.py): the refresh
that makes items from abandoned calls (not short abandons, not failed calls,
one per caller per local day, skipped when answered later) and from due
follow-ups; attempts, retry, the last attempt, expiry; who sees what; the
gauges and the month's KPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from callcenter.casework.callbacks import CallbackRefused, Kind, Outcome, Policy, Status
from callcenter.records import callbacks as cb
from callcenter.records.forms import CallForm, save_form
from callcenter.records.migrate import apply_migrations

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 on 2 March in Shanghai
M = timedelta(minutes=1)
H = timedelta(hours=1)
POLICY = Policy(max_attempts=3, retry=30 * M, expire=48 * H)
LEAD = 24 * H


@pytest.fixture
async def conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(database)
    await apply_migrations(c)
    try:
        yield c
    finally:
        await c.close()


async def call(
    conn: asyncpg.Connection, call_id: str, caller: str, at: datetime, outcome: str,
    queue: str = "hotline",
) -> None:  # fmt: skip
    await conn.execute(
        "INSERT INTO calls (call_id, queue, caller, caller_e164, arrived_at, outcome)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        call_id, queue, caller, "+86" + caller if len(caller) == 11 else None, at, outcome,
    )  # fmt: skip


async def refresh(conn: asyncpg.Connection, now: datetime) -> cb.Refreshed:
    return await cb.refresh(conn, now, SHANGHAI, POLICY, LEAD)


async def listed(conn: asyncpg.Connection, now: datetime, **kw: object) -> list[cb.StoredItem]:
    return await cb.search(conn, now, **kw)  # type: ignore[arg-type]


async def test_abandoned_callers_become_one_item_per_local_day_oldest_first(
    conn: asyncpg.Connection,
) -> None:
    await call(conn, "c1", "13800000001", T0, "abandoned")
    await call(conn, "c2", "13800000001", T0 + H, "abandoned", queue="sales")
    await call(conn, "c3", "13800000002", T0 - H, "abandoned")
    await call(conn, "c4", "13800000003", T0, "short-abandon")
    for i, failed in enumerate(("pbx-timeout", "elsewhere", "refused", "overflow", "rejected")):
        await call(conn, f"f{i}", "13800000004", T0, failed)
    await call(conn, "c5", "anonymous", T0, "abandoned")  # no number to call
    # 23:30 in Shanghai: the same caller's next local day is another item.
    await call(conn, "c6", "13800000001", datetime(2026, 3, 2, 15, 30, tzinfo=UTC), "abandoned")
    await call(conn, "c7", "13800000001", datetime(2026, 3, 2, 16, 30, tzinfo=UTC), "abandoned")
    now = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)
    assert (await refresh(conn, now)).made == 3
    items = await listed(conn, now)
    assert [(i.number, i.local_day, i.call_id, i.queue, i.abandons) for i in items] == [
        ("+8613800000002", date(2026, 3, 2), "c3", "hotline", 1),
        ("+8613800000001", date(2026, 3, 2), "c1", "hotline", 3),
        ("+8613800000001", date(2026, 3, 3), "c7", "hotline", 1),
    ]  # fmt: skip
    first = items[1]
    assert (first.work.owed_since, first.last_abandon_at, first.work.max_attempts) == (
        T0, datetime(2026, 3, 2, 15, 30, tzinfo=UTC), 3,
    )  # fmt: skip
    assert first.work.expires_at == datetime(2026, 3, 3, 16, 0, tzinfo=UTC)
    # Again: nothing new, nothing twice.
    assert await refresh(conn, now + M) == cb.Refreshed(0, 0, 0)
    assert len(await listed(conn, now + M)) == 3


async def test_a_caller_answered_later_is_skipped_and_their_open_item_closed(
    conn: asyncpg.Connection,
) -> None:
    await call(conn, "a1", "13800000001", T0, "abandoned")
    await call(conn, "a2", "13800000001", T0 + 10 * M, "answered")
    await call(conn, "b1", "13800000002", T0, "abandoned")
    await call(conn, "b0", "13800000002", T0 - M, "answered")  # answered before: still owed
    assert (await refresh(conn, T0 + H)).made == 1
    [owed] = await listed(conn, T0 + H)
    assert owed.number == "+8613800000002"
    await call(conn, "b2", "13800000002", T0 + 2 * H, "answered")
    assert await refresh(conn, T0 + 3 * H) == cb.Refreshed(0, 1, 0)
    assert await listed(conn, T0 + 3 * H) == []
    [closed] = await listed(conn, T0 + 3 * H, status=Status.CLOSED)
    assert (closed.work.closed_as, closed.work.closed_at) == ("answered-again", T0 + 3 * H)
    history = await conn.fetch(
        "SELECT actor, action, to_status FROM case_events WHERE case_kind = 'callback'"
    )
    assert [tuple(r) for r in history] == [(cb.REFRESH_ACTOR, "close", "closed")]
    # An abandon after the answered call on the same day: the day's item is closed,
    # one item per caller per day, so nothing more is made.
    await call(conn, "b3", "13800000002", T0 + 4 * H, "abandoned")
    assert (await refresh(conn, T0 + 5 * H)).made == 0


async def test_attempts_retry_and_close_at_the_last_allowed(conn: asyncpg.Connection) -> None:
    await call(conn, "a1", "13800000001", T0, "abandoned")
    await refresh(conn, T0 + M)
    [one] = await listed(conn, T0 + M, due_now=True)
    after = await cb.record_attempt(conn, one.id, Outcome.NO_ANSWER, "a001", T0 + 2 * M, POLICY,
                                    take=True)  # fmt: skip
    assert (after.work.attempts, after.work.status, after.assigned_to) == (1, Status.OPEN, "a001")
    assert after.work.next_attempt_at == T0 + 32 * M
    assert await listed(conn, T0 + 31 * M, due_now=True) == []
    assert [i.id for i in await listed(conn, T0 + 32 * M, due_now=True)] == [one.id]
    await cb.record_attempt(conn, one.id, Outcome.BUSY, "a001", T0 + 40 * M, POLICY)
    last = await cb.record_attempt(conn, one.id, Outcome.FAILED, "sup", T0 + 80 * M, POLICY,
                                   call_id="out-1", notes="no line")  # fmt: skip
    assert (last.work.status, last.work.attempts, last.work.closed_as) == (
        Status.CLOSED, 3, "failed",
    )  # fmt: skip
    with pytest.raises(CallbackRefused):
        await cb.record_attempt(conn, one.id, Outcome.REACHED, "sup", T0 + 90 * M, POLICY)
    tries = await cb.attempts_of(conn, one.id)
    assert [(t.actor, t.outcome, t.call_id) for t in tries] == [
        ("a001", "no-answer", None), ("a001", "busy", None), ("sup", "failed", "out-1"),
    ]  # fmt: skip
    with pytest.raises(cb.NoSuchItem):
        await cb.record_attempt(conn, 999, Outcome.REACHED, "sup", T0, POLICY)


async def test_an_item_not_worked_expires_at_the_end_of_the_next_day(
    conn: asyncpg.Connection,
) -> None:
    await call(conn, "a1", "13800000001", T0, "abandoned")
    await call(conn, "old", "13800000002", T0 - 72 * H, "abandoned")  # already expired: none
    await refresh(conn, T0 + M)
    [one] = await listed(conn, T0 + M)
    end = datetime(2026, 3, 3, 16, 0, tzinfo=UTC)
    assert await refresh(conn, end - M) == cb.Refreshed(0, 0, 0)
    gauge = await cb.gauges(conn, end - M)
    assert gauge.pending["abandoned"] == 1
    assert gauge.oldest["abandoned"] == (end - M - T0).total_seconds()
    assert await refresh(conn, end) == cb.Refreshed(0, 0, 1)
    assert (await cb.item(conn, one.id)).work.status is Status.EXPIRED  # type: ignore[union-attr]
    assert (await cb.gauges(conn, end)).pending == {"abandoned": 0, "call-back": 0, "reply": 0}


async def test_follow_ups_are_listed_when_due_and_closed_when_done(
    conn: asyncpg.Connection,
) -> None:
    await call(conn, "c1", "13800000009", T0 - H, "answered")
    await save_form(conn, CallForm(
        id="form-0001", agent_id="a001", category="inquiry", called_at=T0 - H, call_id="c1",
        promise_due_at=T0 + 30 * H, promise_text="the price",
    ), offered=True)  # fmt: skip
    assert (await refresh(conn, T0)).made == 0  # due in 30 h: not within the 24 h lead
    assert (await refresh(conn, T0 + 7 * H)).made == 1
    [reply] = await listed(conn, T0 + 7 * H)
    assert (reply.work.kind, reply.number, reply.queue, reply.work.expires_at) == (
        Kind.REPLY, "+8613800000009", "hotline", None,
    )  # fmt: skip
    assert await listed(conn, T0 + 7 * H, due_now=True) == []
    assert len(await listed(conn, T0 + 31 * H, due_now=True)) == 1
    # Rescheduled: owed from the new time. Done on the follow-ups' side: closed.
    await conn.execute("UPDATE follow_ups SET due_at = $1", T0 + 40 * H)
    await refresh(conn, T0 + 8 * H)
    assert (await cb.item(conn, reply.id)).work.owed_since == T0 + 40 * H  # type: ignore[union-attr]
    await conn.execute("UPDATE follow_ups SET done_at = $1", T0 + 9 * H)
    assert await refresh(conn, T0 + 10 * H) == cb.Refreshed(0, 1, 0)
    done = await cb.item(conn, reply.id)
    assert done is not None and (done.work.status, done.work.closed_as) == (Status.CLOSED, "done")
    # Never expires: a follow-up's item long past due is still open until done.


async def test_who_sees_which_items(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "INSERT INTO queues (name, config) VALUES ('hotline', '{\"group\": \"service\"}'),"
        " ('sales', '{\"group\": \"sales\"}')"
    )
    await conn.execute(
        "INSERT INTO agents (id, name, number, extension, groups) VALUES"
        " ('a001', 'A', '001', '1001', '{\"service\": 1}'),"
        " ('a002', 'B', '002', '1002', '{\"sales\": 1}')"
    )
    await conn.execute("INSERT INTO staff (id, name, role, team) VALUES ('tl', 'T', "
                       "'team_leader', 'sales')")  # fmt: skip
    await call(conn, "h1", "13800000001", T0, "abandoned")
    await call(conn, "s1", "13800000002", T0, "abandoned", queue="sales")
    await call(conn, "s2", "13800000003", T0, "abandoned", queue="sales")
    await refresh(conn, T0 + M)
    by = {i.call_id: i.id for i in await listed(conn, T0 + M)}
    await cb.assign(conn, by["s2"], "a001", "sup", T0 + M)

    async def sees(user: str, team: str | None) -> set[str]:
        found = await listed(conn, T0 + M, scope=cb.CallbackScope(user, team))
        return {i.call_id for i in found}  # type: ignore[misc]

    assert await sees("a001", None) == {"h1", "s2"}  # their queue's, and theirs
    assert await sees("a002", None) == {"s1"}
    assert await sees("tl", "sales") == {"s1"}
    await cb.assign(conn, by["s2"], "a002", "tl", T0 + 2 * M)
    assert await sees("tl", "sales") == {"s1", "s2"}
    assert await sees("a001", None) == {"h1"}
    assert await cb.in_scope(conn, by["h1"], cb.CallbackScope("a001", None))
    assert not await cb.in_scope(conn, by["h1"], cb.CallbackScope("a002", None))
    assert await cb.in_scope(conn, by["h1"], None)


async def test_the_months_kpi_abandoned_callers_reached_the_same_day(
    conn: asyncpg.Connection,
) -> None:
    for n in range(4):
        await call(conn, f"c{n}", f"1380000000{n}", T0 + n * M, "abandoned")
    await refresh(conn, T0 + H)
    items = await listed(conn, T0 + H)
    await cb.record_attempt(conn, items[0].id, Outcome.REACHED, "a", T0 + 2 * H, POLICY)
    await cb.record_attempt(conn, items[1].id, Outcome.NO_ANSWER, "a", T0 + 2 * H, POLICY)
    # 00:30 on 3 March in Shanghai: reached, but not the same day.
    await cb.record_attempt(conn, items[1].id, Outcome.REACHED, "a",
                            datetime(2026, 3, 2, 16, 30, tzinfo=UTC), POLICY)  # fmt: skip
    await refresh(conn, datetime(2026, 3, 4, 0, 0, tzinfo=UTC))  # the other two expire
    s = await cb.monthly(conn, date(2026, 3, 1), date(2026, 4, 1), SHANGHAI)
    assert (s.abandoned, s.reached_same_day, s.reached, s.expired, s.same_day_rate) == (
        4, 1, 2, 2, 0.25,
    )  # fmt: skip
    assert s.attempts == {"reached": 2, "no-answer": 1, "busy": 0, "wrong-number": 0,
                          "declined": 0, "failed": 0}  # fmt: skip
    assert (await cb.monthly(conn, date(2026, 2, 1), date(2026, 3, 1), SHANGHAI)).abandoned == 0
