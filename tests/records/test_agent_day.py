"""An agent's own day from the records: the offers with their outcomes and whether
each call's record is saved; handled, missed and the average handle time, counted
as the board counts them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from callcenter.acd.events import (
    AgentStateChanged,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallQueued,
    CallTransferred,
    OfferEnded,
)
from callcenter.records.customers import import_customers
from callcenter.records.forms import CallForm, pending_records, save_form
from callcenter.records.migrate import apply_migrations
from callcenter.records.stats import AgentStats, agent_day, agent_stats
from callcenter.records.store import Store, to_record

DAY = datetime(2026, 11, 23, tzinfo=UTC)
NEXT = DAY + timedelta(days=1)
HAN = "+8613812345678"  # a customer
STRANGER = "+8613900000002"


def answered(cid: str, agent: str, caller: str = HAN) -> list[object]:
    return [
        CallQueued(cid, "hotline", caller, 1),
        CallOffered(cid, "hotline", agent, f"{cid}-{agent}", caller, None, 1),
        CallAnswered(cid, "hotline", agent, f"{cid}-{agent}", 4.0, 1, 1, True),
    ]


def wrap_up(agent: str, seconds: float) -> AgentStateChanged:
    return AgentStateChanged(agent, "ready", "wrap-up", None, seconds)


async def test_an_agents_day_lists_each_offer_and_counts_as_the_board(database: str) -> None:
    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    await import_customers(conn, f"name,numbers\nHan Meimei,{HAN}\n")
    calls: list[tuple[float, list[object]]] = [
        # Yesterday: answered, no record; not today's.
        ((DAY - timedelta(hours=2)).timestamp(), [*answered("old", "a1"),
            CallEnded("old", "hotline", "a1", "caller", 60.0, leg_id="old-a1"), wrap_up("a1", 100.0)]),
        # 09:00 answered, 30 s of talk, 10 s of wrap-up; its record is saved below.
        ((DAY + timedelta(hours=9)).timestamp(), [*answered("done", "a1"),
            CallEnded("done", "hotline", "a1", "caller", 30.0, leg_id="done-a1"), wrap_up("a1", 10.0)]),
        # a1 lets it ring (missed); a2 answers.
        ((DAY + timedelta(hours=10)).timestamp(), [
            CallQueued("missed", "hotline", STRANGER, 1),
            CallOffered("missed", "hotline", "a1", "missed-a1", STRANGER, "Li", 1),
            OfferEnded("missed", "a1", "missed-a1", "missed", 2, 10.0),
            CallOffered("missed", "hotline", "a2", "missed-a2", STRANGER, "Li", 3),
            CallAnswered("missed", "hotline", "a2", "missed-a2", 12.0, 3, 1, False)]),
        # a1 answers and transfers it to a2 after 20 s; 5 s of wrap-up; no record.
        ((DAY + timedelta(hours=11)).timestamp(), [*answered("moved", "a1", STRANGER),
            CallTransferred("moved", "hotline", "a1", "agent", "a2", 20.0, "moved-a1"), wrap_up("a1", 5.0),
            CallOffered("moved", "hotline", "a2", "moved-a2", STRANGER, None, 1),
            CallAnswered("moved", "hotline", "a2", "moved-a2", 3.0, 1, 1, True, True)]),
        # a1's phone declines it: neither handled nor missed.
        ((DAY + timedelta(hours=12)).timestamp(), [
            CallQueued("declined", "hotline", HAN, 1),
            CallOffered("declined", "hotline", "a1", "declined-a1", HAN, None, 1),
            OfferEnded("declined", "a1", "declined-a1", "declined", 0, 1.0)]),
        # Answered and still going on: handled, not finished, no record yet.
        ((DAY + timedelta(hours=13)).timestamp(), answered("talking", "a1", STRANGER)),
        # Ringing a1 now.
        ((DAY + timedelta(hours=14)).timestamp(), [
            CallQueued("ringing", "hotline", HAN, 1),
            CallOffered("ringing", "hotline", "a1", "ringing-a1", HAN, None, 1)]),
        # Tomorrow: not today's.
        ((NEXT + timedelta(hours=1)).timestamp(), [*answered("tomorrow", "a1"),
            CallEnded("tomorrow", "hotline", "a1", "caller", 60.0, leg_id="tomorrow-a1")]),
    ]  # fmt: skip
    store = Store(database)
    try:
        for n, (t0, events) in enumerate(calls):
            await store.write(
                [to_record("b", 100 * n + i, t0 + i, e) for i, e in enumerate(events)]
            )
    finally:
        await store.close()
    try:
        await save_form(conn, CallForm(
            id="form-done", call_id="done", agent_id="a1", called_at=DAY, category="inquiry",
        ))  # fmt: skip
        day = await agent_day(conn, "a1", DAY, NEXT)
        listed = [(o.call_id, o.outcome, o.talk_seconds, o.recorded) for o in day.offers]
        assert listed == [  # newest first
            ("ringing", None, None, False),
            ("talking", "answered", None, False),
            ("declined", "declined", None, False),
            ("moved", "answered", 20.0, False),
            ("missed", "missed", None, False),
            ("done", "answered", 30.0, True),
        ]
        by_call = {o.call_id: o for o in day.offers}
        assert by_call["done"].customer_name == "Han Meimei" and by_call["done"].caller == HAN
        assert by_call["moved"].customer_name is None  # the stranger is on nobody's file
        assert by_call["done"].offered_at == DAY + timedelta(hours=9, seconds=1)
        assert (day.handled, day.missed, day.without_record) == (3, 1, 2)
        # (30 + 20 s of talk + 10 + 5 s of wrap-up) over the 2 calls finished.
        assert (day.finished, day.talk_seconds, day.wrap_up_seconds) == (2, 50.0, 15.0)
        assert day.aht_seconds == pytest.approx(32.5)

        # Handled and missed are the board's (one definition) ...
        [a1, _] = await agent_stats(conn, DAY, NEXT, ["a1", "a2"])
        assert isinstance(a1, AgentStats) and (a1.handled, a1.missed) == (3, 1)
        # ... and the calls lacking a record are those the desktop lists as pending.
        pending = await pending_records(conn, "a1", DAY)
        assert {p.call_id for p in pending if p.answered_at < NEXT} == {"moved", "talking"}

        # The record saved: the call is recorded in the day.
        await save_form(conn, CallForm(
            id="form-moved", call_id="moved", agent_id="a1", called_at=DAY, category="inquiry",
        ))  # fmt: skip
        day = await agent_day(conn, "a1", DAY, NEXT)
        assert day.without_record == 1
        assert [o.call_id for o in day.offers if o.recorded] == ["moved", "done"]

        # Another agent's day, and a day with nothing in it.
        theirs = await agent_day(conn, "a2", DAY, NEXT)
        assert [(o.call_id, o.outcome) for o in theirs.offers] == [
            ("moved", "answered"), ("missed", "answered")
        ]  # fmt: skip
        assert (theirs.handled, theirs.missed, theirs.finished, theirs.aht_seconds) == (
            2, 0, 0, None
        )  # fmt: skip
        empty = await agent_day(conn, "a1", NEXT + timedelta(days=1), NEXT + timedelta(days=2))
        assert (empty.offers, empty.handled, empty.missed, empty.aht_seconds) == ([], 0, 0, None)
        # At most `limit` offers, the newest; the figures count them all.
        two = await agent_day(conn, "a1", DAY, NEXT, limit=2)
        assert [o.call_id for o in two.offers] == ["ringing", "talking"] and two.handled == 3
    finally:
        await conn.close()
