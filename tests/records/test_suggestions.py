"""Suggestions and promised replies in PostgreSQL: recorded from a form or by
intake, worked through their tables, every change in case_events, and the
month's adoption rate."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from callcenter.casework.suggestions import (
    Answer,
    Assess,
    AssignReply,
    CaseRefused,
    FollowUpStatus,
    Forward,
    InvalidTransition,
    Reply,
    Reschedule,
    SuggestionStatus,
)
from callcenter.records.complaints import monthly, receive_complaint
from callcenter.records.forms import CallForm, save_form
from callcenter.records.migrate import apply_migrations
from callcenter.records.suggestions import (
    NoSuchCase,
    case_history,
    change_follow_up,
    change_suggestion,
    receive_suggestion,
    search_follow_ups,
    search_suggestions,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture
async def conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    c = await asyncpg.connect(database)
    await apply_migrations(c)
    try:
        yield c
    finally:
        await c.close()


async def test_suggestions_from_a_form_and_intake_worked_to_an_answer(
    conn: asyncpg.Connection,
) -> None:
    await save_form(conn, CallForm(
        id="form-0001", agent_id="a001", category="suggestion", called_at=T0,
        service_requested="open the east gate at six", caller_name="Han",
    ), offered=True)  # fmt: skip
    by_staff = await receive_suggestion(
        conn, text="more benches by the pond", received_at=T0 + H, reported_by="guard-7"
    )
    [from_form, other] = await search_suggestions(conn)
    assert (from_form.form_id, from_form.text, from_form.suggester, from_form.reported_by) == (
        "form-0001", "open the east gate at six", "Han", "a001",
    )  # fmt: skip
    assert other.id == by_staff and other.work.status is SuggestionStatus.RECORDED

    sid = from_form.id
    await change_suggestion(conn, sid, Assess(feasible=True, valuable=True), "sup", T0 + 2 * H)
    await change_suggestion(conn, sid, Forward("security"), "sup", T0 + 3 * H)
    done = await change_suggestion(conn, sid, Answer(True, "from Monday, 06:00"), "sup", T0 + 9 * H)
    assert (done.work.status, done.work.adopted, done.work.answered_at) == (
        SuggestionStatus.ANSWERED, True, T0 + 9 * H,
    )  # fmt: skip
    with pytest.raises(InvalidTransition):
        await change_suggestion(conn, sid, Forward("x"), "sup", T0 + 10 * H)
    await change_suggestion(
        conn, by_staff, Assess(feasible=False, valuable=False), "sup", T0 + 4 * H
    )
    with pytest.raises(CaseRefused, match="valuable"):
        await change_suggestion(conn, by_staff, Forward("parks"), "sup", T0 + 5 * H)
    await change_suggestion(conn, by_staff, Answer(False, "no room"), "sup", T0 + 6 * H)
    history = await case_history(conn, "suggestion", sid)
    assert [(e.actor, e.action, e.to_status) for e in history] == [
        ("a001", "receive", "recorded"), ("sup", "assess", "assessed"),
        ("sup", "forward", "forwarded"), ("sup", "answer", "answered"),
    ]  # fmt: skip
    assert history[3].details == {"adopted": True, "answer": "from Monday, 06:00"}
    assert [s.id for s in await search_suggestions(conn, status=SuggestionStatus.ANSWERED)] == [
        sid, by_staff,
    ]  # fmt: skip
    with pytest.raises(NoSuchCase):
        await change_suggestion(conn, 999, Assess(True, True), "sup", T0)

    # The month: two suggestions, both answered, one adopted.
    await receive_complaint(conn, matter="x", received_at=T0, reported_by="a001")
    stats = await monthly(
        conn, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), T0 + 10 * H
    )
    assert (stats.suggestions, stats.suggestions_answered, stats.suggestions_adopted) == (2, 2, 1)
    assert stats.adoption_rate == 0.5


async def test_a_promised_reply_owned_rescheduled_and_given(conn: asyncpg.Connection) -> None:
    saved = await save_form(conn, CallForm(
        id="form-0001", agent_id="a001", category="inquiry", called_at=T0,
        promise_due_at=T0 + 24 * H, promise_text="the repair's price",
    ), offered=True)  # fmt: skip
    cid = await receive_complaint(conn, matter="x", received_at=T0, reported_by="a001")
    fid = saved.follow_up_id
    assert fid is not None
    assert [f.id for f in await search_follow_ups(conn, T0 + 25 * H, overdue=True)] == [fid]
    await change_follow_up(conn, fid, AssignReply("li"), "sup", T0 + H)
    moved = await change_follow_up(
        conn, fid, Reschedule(T0 + 48 * H, "supplier"), "sup", T0 + 2 * H
    )
    assert (moved.work.owner, moved.work.due_at) == ("li", T0 + 48 * H)
    assert await search_follow_ups(conn, T0 + 25 * H, kind="reply", overdue=True) == []
    assert [f.id for f in await search_follow_ups(conn, T0, owner="li")] == [fid]
    done = await change_follow_up(conn, fid, Reply("price: 80 yuan"), "li", T0 + 30 * H)
    assert (done.work.status, done.work.done_at, done.done_by) == (
        FollowUpStatus.DONE, T0 + 30 * H, "li",
    )  # fmt: skip
    with pytest.raises(InvalidTransition):
        await change_follow_up(conn, fid, Reply(), "li", T0 + 31 * H)
    assert [(e.action, e.to_status) for e in await case_history(conn, "follow-up", fid)] == [
        ("assign", "open"), ("reschedule", "open"), ("reply", "done"),
    ]  # fmt: skip
    # A complaint's call-back is done by the complaint, not here.
    [callback] = await search_follow_ups(conn, T0, kind="call-back")
    assert callback.complaint_id == cid
    with pytest.raises(CaseRefused, match="call-back"):
        await change_follow_up(conn, callback.id, Reply(), "sup", T0 + H)
    assert [f.id for f in await search_follow_ups(conn, T0, open_only=True)] == [callback.id]
