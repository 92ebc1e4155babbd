"""Complaints in PostgreSQL: intake, every change stored with its history, the
call-back follow-up, search, the gauges and the month's statistics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from callcenter.casework.complaints import (
    Assign,
    CallBack,
    Check,
    Classify,
    Close,
    ComplaintClass,
    ComplaintRefused,
    Correct,
    InvalidTransition,
    Investigate,
    Status,
)
from callcenter.records import migrate
from callcenter.records.complaints import (
    NoSuchComplaint,
    change_complaint,
    complaint,
    complaint_history,
    gauges,
    monthly,
    receive_complaint,
    search,
)
from callcenter.records.forms import CallForm, save_form
from callcenter.records.migrate import apply_migrations

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
C = ComplaintClass


@pytest.fixture
async def conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(database)
    await apply_migrations(c)
    try:
        yield c
    finally:
        await c.close()


async def intake(
    conn: asyncpg.Connection, cls: ComplaintClass = C.ORDINARY, at: datetime = T0
) -> int:
    return await receive_complaint(
        conn, matter="the lift is broken again", received_at=at, reported_by="guard-7",
        complaint_class=cls, complainant="Li Lei", contact="13812345678",
    )  # fmt: skip


async def test_a_complaint_worked_to_its_close_with_every_change_in_its_history(
    conn: asyncpg.Connection,
) -> None:
    cid = await intake(conn)
    got = await complaint(conn, cid)
    assert got is not None and got.reported_by == "guard-7" and got.form_id is None
    assert (got.work.status, got.work.deadline_at) == (Status.RECEIVED, T0 + 72 * H)
    callback = await conn.fetchrow("SELECT * FROM follow_ups WHERE complaint_id = $1", cid)
    assert (callback["kind"], callback["due_at"], callback["done_at"]) == (
        "call-back",
        T0 + 72 * H,
        None,
    )

    await change_complaint(conn, cid, Assign("sup"), "sup", T0 + H)
    await change_complaint(conn, cid, Classify(C.VALID, "facilities"), "sup", T0 + 2 * H)
    await change_complaint(
        conn, cid, Investigate("li", "motor worn", on_site=True), "sup", T0 + 3 * H
    )
    await change_complaint(conn, cid, Classify(C.SERIOUS, "third time"), "sup", T0 + 4 * H)
    await change_complaint(
        conn, cid, Correct("wang", "replace the motor", T0 + 40 * H), "sup", T0 + 5 * H
    )
    with pytest.raises(InvalidTransition):
        await change_complaint(conn, cid, Close(), "sup", T0 + 6 * H)  # no call-back yet
    await change_complaint(conn, cid, CallBack(reached=False), "sup", T0 + 41 * H)
    await change_complaint(conn, cid, Check(effective=True, notes="runs"), "sup", T0 + 42 * H)
    done = await change_complaint(
        conn, cid, CallBack(reached=True, satisfied=True, words="好了"), "sup", T0 + 43 * H
    )
    assert done.work.status is Status.CALLED_BACK
    closed = await change_complaint(conn, cid, Close("done"), "boss", T0 + 44 * H)

    stored = await complaint(conn, cid)
    assert stored is not None and stored.work == closed.work
    w = stored.work
    assert (w.status, w.complaint_class, w.deadline_at, w.owner) == (
        Status.CLOSED, C.SERIOUS, T0 + 48 * H, "sup",
    )  # fmt: skip
    assert (w.investigated_by, w.findings, w.on_site) == ("li", "motor worn", True)
    assert (w.action_owner, w.action_due_at, w.action_effective) == ("wang", T0 + 40 * H, True)
    assert (w.contacted_at, w.satisfied, w.customer_words) == (T0 + 43 * H, True, "好了")
    assert w.timely() is True and await conn.fetchval("SELECT met_at FROM complaints") == T0 + 5 * H
    callback = await conn.fetchrow("SELECT * FROM follow_ups WHERE complaint_id = $1", cid)
    assert (callback["due_at"], callback["done_at"], callback["done_by"]) == (
        T0 + 48 * H,
        T0 + 43 * H,
        "sup",
    )

    history = await complaint_history(conn, cid)
    assert [(e.actor, e.action, e.from_status, e.to_status) for e in history] == [
        ("guard-7", "receive", None, "received"),
        ("sup", "assign", "received", "received"),
        ("sup", "classify", "received", "classified"),
        ("sup", "investigate", "classified", "investigated"),
        ("sup", "classify", "investigated", "investigated"),
        ("sup", "correct", "investigated", "correcting"),
        ("sup", "call-back-missed", "correcting", "correcting"),
        ("sup", "check", "correcting", "correcting"),
        ("sup", "call-back", "correcting", "called-back"),
        ("boss", "close", "called-back", "closed"),
    ]
    assert history[4].details == {"complaint_class": "serious", "reason": "third time"}
    assert history[5].details["due_at"] == (T0 + 40 * H).isoformat()
    assert [e.at for e in history][-1] == T0 + 44 * H


async def test_a_refused_change_stores_nothing(conn: asyncpg.Connection) -> None:
    cid = await intake(conn, C.VALID)
    await change_complaint(conn, cid, CallBack(reached=True), "sup", T0 + H)
    before = await conn.fetchrow("SELECT * FROM complaints")
    with pytest.raises(ComplaintRefused, match="corrective action"):
        await change_complaint(conn, cid, Close(), "sup", T0 + 2 * H)
    assert await conn.fetchrow("SELECT * FROM complaints") == before
    assert await conn.fetchval("SELECT count(*) FROM complaint_events") == 2
    with pytest.raises(NoSuchComplaint):
        await change_complaint(conn, 9999, Assign("x"), "sup", T0)
    assert await complaint(conn, 9999) is None


async def test_a_complaint_from_the_agents_form_is_received_with_its_history(
    conn: asyncpg.Connection,
) -> None:
    await save_form(conn, CallForm(
        id="form-0001", agent_id="a001", category="complaint", called_at=T0,
        complaint_matter="rude fitter", complaint_class=C.INVALID, caller_name="Han",
    ), offered=True)  # fmt: skip
    [found] = await search(conn, T0)
    assert (found.form_id, found.reported_by, found.complainant, found.work.deadline_at) == (
        "form-0001", "a001", "Han", T0 + 24 * H,
    )  # fmt: skip
    [event] = await complaint_history(conn, found.id)
    assert (event.actor, event.action, event.at) == ("a001", "receive", T0)


async def test_search_filters_and_the_gauges(conn: asyncpg.Connection) -> None:
    invalid = await intake(conn, C.INVALID)  # due T0+24h
    valid = await intake(conn, C.VALID)  # due T0+72h
    serious = await intake(conn, C.SERIOUS)  # due T0+48h
    await change_complaint(conn, valid, Assign("zhang"), "sup", T0 + H)
    await change_complaint(conn, serious, Investigate("li", "x"), "sup", T0 + H)
    await change_complaint(conn, serious, Correct("li", "y", T0 + 99 * H), "sup", T0 + 2 * H)
    await conn.execute(
        "INSERT INTO follow_ups (kind, due_at, notes) VALUES ('reply', $1, 'price'), ('reply', $2, 'later')",
        T0 + 10 * H, T0 + 100 * H,
    )  # fmt: skip
    now = T0 + 50 * H

    async def ids(**kw: object) -> list[int]:
        return [c.id for c in await search(conn, now, **kw)]  # type: ignore[arg-type]

    assert await ids() == [invalid, serious, valid]  # by deadline
    assert await ids(overdue=True) == [invalid]  # serious: its result was recorded in time
    assert await ids(overdue=False) == [serious, valid]
    assert await ids(owner="zhang") == [valid]
    assert await ids(complaint_class=C.SERIOUS) == [serious]
    assert await ids(status=Status.CORRECTING) == [serious]
    assert await ids(due_from=T0 + 24 * H, due_to=T0 + 49 * H) == [invalid, serious]
    assert await ids(limit=1, offset=1) == [serious]

    g = await gauges(conn, now)
    assert g.open == {"ordinary": 0, "serious": 1, "invalid": 1, "valid": 1, "other-unit": 0}
    assert g.overdue == {"ordinary": 0, "serious": 0, "invalid": 1, "valid": 0, "other-unit": 0}
    # The invalid and the serious one's call-backs (due at 24 h, 48 h) and the first reply.
    assert g.followups_due == {"call-back": 2, "reply": 1}
    later = await gauges(conn, T0 + 200 * H)
    assert later.overdue["valid"] == 1 and later.followups_due == {"call-back": 3, "reply": 2}


async def test_the_months_statistics(conn: asyncpg.Connection) -> None:
    march, april = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    timely = await intake(conn, C.INVALID)
    await change_complaint(conn, timely, CallBack(reached=True), "sup", T0 + H)
    await change_complaint(conn, timely, Close(), "sup", T0 + 2 * H)
    late = await intake(conn, C.ORDINARY)
    await change_complaint(conn, late, CallBack(reached=True), "sup", T0 + 80 * H)
    await change_complaint(conn, late, Close(), "sup", T0 + 80 * H)
    await intake(conn, C.INVALID)  # open, overdue after a day
    await intake(conn, C.VALID, at=april + H)  # next month's
    await save_form(conn, CallForm(
        id="form-0001", agent_id="a001", category="suggestion", called_at=T0,
        service_requested="open the gate earlier",
    ), offered=True)  # fmt: skip

    stats = await monthly(conn, march, april, T0 + 30 * 24 * H)
    assert (stats.received, stats.closed, stats.closed_in_time, stats.overdue) == (3, 2, 1, 1)
    assert stats.timeliness_rate == 0.5
    assert stats.by_class == {
        "ordinary": 1,
        "serious": 0,
        "invalid": 2,
        "valid": 0,
        "other-unit": 0,
    }
    assert stats.by_status["closed"] == 2 and stats.by_status["received"] == 1
    assert (stats.suggestions, stats.suggestions_answered, stats.adoption_rate) == (1, 0, None)
    empty = await monthly(conn, datetime(2026, 1, 1, tzinfo=UTC), march, T0)
    assert (empty.received, empty.timeliness_rate) == (0, None)


async def test_complaints_stored_before_the_upgrade_become_received_with_a_history(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = await asyncpg.connect(database)
    try:
        every = migrate.migrations()
        monkeypatch.setattr(migrate, "migrations", lambda: [m for m in every if m.version < 9])
        await apply_migrations(conn)
        await conn.execute(
            "INSERT INTO call_forms (id, agent_id, called_at, category, complaint_matter)"
            " VALUES ('form-0001', 'a001', $1, 'complaint', 'noise')",
            T0,
        )
        await conn.execute(
            "INSERT INTO complaints (form_id, class, matter, deadline_at) VALUES ('form-0001', 'valid', 'noise', $1)",
            T0 + 72 * H,
        )
        await conn.execute(
            "INSERT INTO follow_ups (form_id, kind, due_at) VALUES ('form-0001', 'call-back', $1)",
            T0 + 72 * H,
        )
        monkeypatch.setattr(migrate, "migrations", lambda: every)
        await apply_migrations(conn)
        [old] = await search(conn, T0)
        assert (old.work.status, old.work.received_at, old.work.complaint_class) == (
            Status.RECEIVED, T0, C.VALID,
        )  # fmt: skip
        [event] = await complaint_history(conn, old.id)
        assert (event.actor, event.action, event.to_status) == ("a001", "receive", "received")
        # Worked on as any other: its call-back follows it.
        await change_complaint(conn, old.id, CallBack(reached=True), "sup", T0 + H)
        assert await conn.fetchval("SELECT done_at FROM follow_ups") == T0 + H
    finally:
        await conn.close()


async def test_two_supervisors_closing_at_once_close_it_once(database: str) -> None:
    """The row is locked for the change: the second close sees a closed complaint."""
    first, second = await asyncpg.connect(database), await asyncpg.connect(database)
    try:
        await apply_migrations(first)
        cid = await intake(first, C.INVALID)
        await change_complaint(first, cid, CallBack(reached=True), "sup", T0 + H)
        results = await asyncio.gather(
            change_complaint(first, cid, Close("a"), "sup-a", T0 + 2 * H),
            change_complaint(second, cid, Close("b"), "sup-b", T0 + 2 * H),
            return_exceptions=True,
        )
        assert sorted(type(r).__name__ for r in results) == ["InvalidTransition", "StoredComplaint"]
        closes = await first.fetchval(
            "SELECT count(*) FROM complaint_events WHERE action = 'close'"
        )
        assert closes == 1
    finally:
        await first.close()
        await second.close()
