"""`Store.write` against a real PostgreSQL: a batch gives the rows its records give one at
a time, however it is split, and written twice it changes nothing."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from callcenter.acd.events import (
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CallRejected,
    CallTransferred,
    OfferEnded,
    RingTicked,
    TargetBreached,
)
from callcenter.records.migrate import apply_migrations
from callcenter.records.store import Record, Store, StoreRefused, to_record

T0 = 1_763_900_000.0
TABLES = {  # table: its key
    "calls": "call_id",
    "ring_attempts": "leg_id",
    "call_events": "key",
    "agent_state_history": "key",
    "queue_log": "key",
}
Rows = dict[str, list[dict[str, Any]]]


def records(events: Sequence[object], boot: str = "b") -> list[Record]:
    return [to_record(boot, i, T0 + i, event) for i, event in enumerate(events)]


def interleaved_calls() -> list[object]:
    """Four calls and two agents, their events interleaved, each call's kinds in its own
    order: A answered on its second offer; B answered, transferred, then abandoned while
    waiting again; C abandoned in the queue; D rejected."""
    a, b, c, d = "A@pbx", "B@pbx", "C@pbx", "D@pbx"
    return [
        CallQueued(a, "hotline", "13800000001", 1, "4000"),
        CallQueued(b, "hotline", "13800000002", 2),
        CallOffered(a, "hotline", "a1", "A1", "13800000001", None, 1),
        AgentStateChanged("a1", "ringing", "ready", None),
        CallOffered(b, "hotline", "a2", "B1", "13800000002", "Han Meimei", 1),
        RingTicked(a, 1, "a1", "A1"),
        CallQueued(c, "sales", "13800000003", 3),
        RingTicked(b, 1, "a2", "B1"),
        RingTicked(a, 1, "a1", "A1"),  # the first ring again: changes nothing
        CallAnswered(b, "hotline", "a2", "B1", 4.0, 2, 1, True),
        OfferEnded(a, "a1", "A1", "missed", 3, 12.5),
        AgentStateChanged("a1", "not-ready", "ringing", "ring-no-answer"),
        CallOffered(a, "hotline", "a3", "A2", "13800000001", "Li Lei", 4),
        TargetBreached(c, "sales", 4, "supervisor"),
        CallRejected(d, "4001", "closed"),
        CallTransferred(b, "hotline", "a2", "queue", "sales", 30.0, "B1"),
        CallAbandoned(c, "sales", 9.5, 4, "queued", None, False),
        RingTicked(a, 1, "a3", "A2"),
        CallAnswered(a, "hotline", "a3", "A2", 14.0, 5, 1, False),
        CallAbandoned(b, "hotline", 40.0, 8, "queued", None, False, True),
        AgentStateChanged("a2", "offline", "wrap-up", None),
        CallEnded(a, "hotline", "a3", "agent", 42.0, 14.0, "A2"),
    ]


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    conn = await asyncpg.connect(database)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    store = Store(database, max_size=1)
    yield store
    await store.close()


@pytest.fixture
async def conn(database: str, store: Store) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database)
    yield conn
    await conn.close()


async def rows(conn: asyncpg.Connection, tables: Sequence[str] = tuple(TABLES)) -> Rows:
    """What the records wrote (but when: ``updated_at`` and ``written_at`` are the
    transaction's time)."""
    out: Rows = {}
    for table in tables:
        found = await conn.fetch(f"SELECT * FROM {table} ORDER BY {TABLES[table]}")
        out[table] = [
            {k: v for k, v in r.items() if k not in ("updated_at", "written_at")} for r in found
        ]
    return out


async def written(
    store: Store, conn: asyncpg.Connection, batches: Sequence[Sequence[Record]]
) -> Rows:
    """The rows of these batches written in turn into empty tables."""
    await conn.execute(f"TRUNCATE {', '.join(TABLES)}")
    for batch in batches:
        await store.write(batch)
    return await rows(conn)


def splits(rng: random.Random, items: list[Record]) -> list[list[Record]]:
    out, start = [], 0
    while start < len(items):
        end = start + rng.randint(1, len(items) - start)
        out.append(items[start:end])
        start = end
    return out


def test_a_record_holds_every_field_of_its_event_even_without_slots() -> None:
    @dataclass(frozen=True)
    class Compiled:  # what mypyc makes of a slotted dataclass: no __slots__
        call_id: str
        rings: int
        name: str | None = None

    record = to_record("b", 7, T0, Compiled("c1", 2))
    assert record == {
        "key": "b:7", "kind": "Compiled", "at": T0,
        "event": {"call_id": "c1", "rings": 2, "name": None},
    }  # fmt: skip
    assert to_record("b", 8, T0, CallRejected("c2", "4000", "closed"))["event"] == {
        "call_id": "c2", "called": "4000", "reason": "closed",
    }  # fmt: skip


async def test_a_batch_gives_the_rows_its_records_give_one_at_a_time(
    store: Store, conn: asyncpg.Connection
) -> None:
    batch = records(interleaved_calls())
    whole = await written(store, conn, [batch])
    assert whole == await written(store, conn, [[r] for r in batch])
    rng = random.Random(4)
    for _ in range(4):
        assert whole == await written(store, conn, splits(rng, batch))

    calls = {r["call_id"]: r for r in whole["calls"]}
    a, b, c, d = calls["A@pbx"], calls["B@pbx"], calls["C@pbx"], calls["D@pbx"]
    # A: offered twice, answered on the second offer, then ended: the later state wins.
    assert (a["outcome"], a["agent_id"], a["rings_to_answer"], a["wait_seconds"]) == (
        "answered", "a3", 5, 14.0,
    )  # fmt: skip
    assert (a["hung_up_by"], a["talk_seconds"], a["ended_at"].timestamp()) == (
        "agent", 42.0, T0 + 21,
    )  # fmt: skip
    assert (a["caller_name"], a["hotline"], a["caller_e164"]) == (
        "Li Lei",
        "4000",
        "+8613800000001",
    )
    # B: answered, transferred, then the caller left while waiting again.
    assert (b["outcome"], b["caller_name"], b["hung_up_by"], b["rings"]) == (
        "transferred", "Han Meimei", "caller", 8,
    )  # fmt: skip
    assert b["answered_at"].timestamp() == T0 + 9 and b["hotline"] is None
    # C: breached, then abandoned in the queue.
    assert (c["outcome"], c["breached"], c["abandoned_where"], c["queue_position"]) == (
        "abandoned", True, "queued", 3,
    )  # fmt: skip
    assert (d["outcome"], d["hotline"], d["ended_at"].timestamp()) == ("rejected", "4001", T0 + 14)
    legs = {r["leg_id"]: r for r in whole["ring_attempts"]}
    assert (legs["A1"]["outcome"], legs["A1"]["leg_rings"]) == ("missed", 3)
    assert legs["A1"]["rang_at"].timestamp() == T0 + 5  # the first tick of ring 1
    assert (legs["A2"]["outcome"], legs["A2"]["rang_at"].timestamp()) == ("answered", T0 + 17)
    assert (legs["B1"]["outcome"], legs["B1"]["ended_at"].timestamp()) == ("answered", T0 + 9)
    # The agent's part of each answered leg: its talk and how it ended.
    assert (legs["B1"]["talk_seconds"], legs["B1"]["hung_up_by"]) == (30.0, "transferred")
    assert (legs["A2"]["talk_seconds"], legs["A2"]["hung_up_by"]) == (42.0, "agent")
    assert (legs["A1"]["talk_seconds"], legs["A1"]["hung_up_by"]) == (None, None)
    lines = [(r["callid"], r["event"], r["queuename"]) for r in whole["queue_log"]]
    assert sorted(lines, key=str) == sorted([
        ("A@pbx", "ENTERQUEUE", "hotline"), ("B@pbx", "ENTERQUEUE", "hotline"),
        ("C@pbx", "ENTERQUEUE", "sales"), ("B@pbx", "CONNECT", "hotline"),
        ("A@pbx", "RINGNOANSWER", "hotline"), ("B@pbx", "BLINDTRANSFER", "hotline"),
        ("C@pbx", "ABANDON", "sales"), ("A@pbx", "CONNECT", "hotline"),
        ("B@pbx", "ABANDON", "hotline"), ("A@pbx", "COMPLETEAGENT", "hotline"),
        ("NONE", "PAUSE", "NONE"), ("NONE", "REMOVEMEMBER", "NONE"),
    ], key=str)  # fmt: skip
    ring = next(r for r in whole["queue_log"] if r["event"] == "RINGNOANSWER")
    assert (ring["agent"], ring["data1"]) == ("a1", "12500")
    ended = next(r for r in whole["queue_log"] if r["event"] == "COMPLETEAGENT")
    assert (ended["data1"], ended["data2"], ended["data3"]) == ("14", "42", "1")
    assert len(whole["call_events"]) == len(batch)
    assert len(whole["agent_state_history"]) == 3


async def test_a_call_the_acd_cannot_place_at_its_overflow_is_ended_in_the_records(
    store: Store, conn: asyncpg.Connection
) -> None:
    """A queue overflowing to itself, and two overflowing to each other (the settings
    refuse both): the ACD rejects the call at the overflow, and its row is ended
    as an overflow, as any queued call rejected (480) is."""
    from callcenter.acd.events import CallArrived
    from callcenter.acd.queues import Overflow, QueueConfig
    from callcenter.records.appender import is_recorded
    from tests.acd.test_engine import Floor

    f = Floor(
        "a1",
        queues=[
            QueueConfig("self", ("4000",), "cs", max_wait=4.0, overflow=Overflow("queue", "self")),
            QueueConfig("a", ("5000",), "none", max_wait=4.0, overflow=Overflow("queue", "b")),
            QueueConfig("b", (), "none", max_wait=4.0, overflow=Overflow("queue", "a")),
        ],
    )
    f.do(CallArrived("c1", "4000", "13800000001"))  # offered to a1, who never answers
    f.do(CallArrived("c2", "5000", "13800000002"), at=1.0)
    f.until(10.0)  # c1 rejected at 4.0; c2 on to b at 5.0, rejected at 9.0
    events = [(at, e) for at, e in f.log if is_recorded(e)]
    await written(
        store, conn, [[to_record("b", n, T0 + at, e) for n, (at, e) in enumerate(events)]]
    )
    calls = {r["call_id"]: r for r in (await rows(conn, ["calls"]))["calls"]}
    assert {c: (r["outcome"], r["ended_at"].timestamp()) for c, r in calls.items()} == {
        "c1": ("overflow", T0 + 4.0), "c2": ("overflow", T0 + 9.0),
    }  # fmt: skip
    assert (calls["c1"]["queue"], calls["c2"]["queue"]) == ("self", "a")
    exits = await conn.fetch(
        "SELECT callid, queuename FROM queue_log WHERE event = 'EXITWITHTIMEOUT' ORDER BY time"
    )
    assert [tuple(r) for r in exits] == [("c1", "self"), ("c2", "a"), ("c2", "a")]


async def test_a_change_before_its_call_is_opened_finds_nothing_as_one_at_a_time(
    store: Store, conn: asyncpg.Connection
) -> None:
    """An answer and an end that come before the call's CallQueued in the same batch
    update no row, exactly as when the records are written one at a time."""
    batch = records([
        CallAnswered("E@pbx", "hotline", "a1", "E1", 3.0, 1, 1, True),
        OfferEnded("E@pbx", "a1", "E1", "busy", 0),
        CallQueued("E@pbx", "hotline", "139", 1),
        CallOffered("E@pbx", "hotline", "a1", "E1", "139", None, 1),
        CallEnded("E@pbx", "hotline", "a1", "caller", 5.0),
    ])  # fmt: skip
    row_tables = ("calls", "ring_attempts", "call_events")
    await written(store, conn, [batch])
    whole = await rows(conn, row_tables)
    await written(store, conn, [[r] for r in batch])
    assert whole == await rows(conn, row_tables)
    call, leg = whole["calls"][0], whole["ring_attempts"][0]
    assert (call["answered_at"], call["outcome"], call["talk_seconds"]) == (None, None, 5.0)
    assert (leg["outcome"], leg["ended_at"]) == (None, None)


async def test_a_batch_written_twice_changes_nothing(
    store: Store, conn: asyncpg.Connection
) -> None:
    batch = records(interleaved_calls())
    first = await written(store, conn, [batch])
    await store.write(batch)
    assert await rows(conn) == first


async def test_a_later_batch_written_again_alone_changes_nothing(
    store: Store, conn: asyncpg.Connection
) -> None:
    """What a replay of the journal does after a crash between the commit and the
    journal's truncation: the records before it went in already and are not written
    again. B was answered in the first batch and abandoned in the second."""
    batch = records(interleaved_calls())
    first, later = batch[:12], batch[12:]
    expected = await written(store, conn, [first, later])
    await store.write(later)
    assert await rows(conn) == expected


# -- many random streams ----------------------------------------------------------------------


def random_stream(rng: random.Random) -> list[object]:
    """A stream as the bus could publish it: every call queued and every leg offered
    before anything else happens to it; then any of its events, in any order."""
    calls = [f"c{n}@pbx" for n in range(rng.randint(1, 3))]
    legs = {f"l{n}": rng.choice(calls) for n in range(rng.randint(1, 4))}
    stream: list[object] = [CallQueued(c, "hotline", "13800001111", 1) for c in calls]
    stream += [CallOffered(c, "hotline", "a1", leg, "138", None, 1) for leg, c in legs.items()]
    for _ in range(rng.randint(5, 30)):
        leg = rng.choice(list(legs))
        stream.append(random_event(rng, legs[leg], leg))
    return stream


def random_event(rng: random.Random, c: str, leg: str) -> object:
    a = rng.choice(["a1", "a2"])
    s = rng.choice([0.0, 1.5, 2.4999, 3.5, 6.0, 0.1 + 0.2])  # seconds
    match rng.randrange(10):
        case 0:
            return CallOffered(c, "hotline", a, leg, "138", rng.choice([None, "Li Lei"]), 1)
        case 1:
            return RingTicked(c, rng.choice([1, 2]), a, leg)
        case 2:
            return OfferEnded(c, a, leg, rng.choice(["missed", "cancelled"]), 2, s)
        case 3:
            transferred = rng.random() < 0.3
            return CallAnswered(c, "hotline", a, leg, s, 2, 1, rng.random() < 0.5, transferred)
        case 4:
            return TargetBreached(c, "hotline", 4, "supervisor")
        case 5:
            return CallAbandoned(c, "hotline", s, 3, "ringing", None, rng.random() < 0.5)
        case 6:
            return CallEnded(c, "hotline", a, rng.choice(["caller", "agent"]), s, s, leg)
        case 7:
            return CallTransferred(c, "hotline", a, "queue", "sales", s, leg)
        case 8:
            return CallOverflowed(c, "hotline", "max-wait", rng.choice(["queue", "number"]), "")
        case _:
            state, previous = (
                rng.choice(["ready", "not-ready", "offline"]),
                rng.choice(["ready", "offline"]),
            )
            return AgentStateChanged(a, state, previous, rng.choice([None, "x"]))


async def test_random_streams_give_the_same_rows_however_split_and_written_twice(
    store: Store, conn: asyncpg.Connection
) -> None:
    for seed in range(8):
        rng = random.Random(seed)
        stream = records(random_stream(rng))
        whole = await written(store, conn, [stream])
        await store.write(stream)
        assert await rows(conn) == whole, seed
        assert await written(store, conn, [[r] for r in stream]) == whole, seed
        assert await written(store, conn, splits(rng, stream)) == whole, seed


async def test_a_batch_the_database_refuses_writes_nothing(
    store: Store, conn: asyncpg.Connection
) -> None:
    good = records([CallQueued("F@pbx", "hotline", "139", 1)], boot="good")
    bad = records(
        [
            CallQueued("G@pbx", "hotline", "139", 1),
            CallAnswered("G@pbx", "q", "a", "G1", 1.0, 0, 0, True),
        ],
        boot="bad",
    )  # rings_to_answer 0 breaks a CHECK constraint: the whole batch is refused
    with pytest.raises(StoreRefused) as refused:
        await store.write(bad)
    assert isinstance(refused.value.__cause__, asyncpg.CheckViolationError)
    assert (refused.value.error, refused.value.sqlstate) == ("CheckViolationError", "23514")
    await store.write(good)
    assert [r["key"] for r in await conn.fetch("SELECT key FROM call_events")] == ["good:0"]
    assert [r["call_id"] for r in await conn.fetch("SELECT call_id FROM calls")] == ["F@pbx"]


async def test_a_migration_longer_than_a_write_may_take_still_finishes(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A database that was down at start is migrated by the writer when it comes up;
    a migration that rewrites big tables takes minutes, more than a write's time-out,
    and must not be given up on (the writer would never write again)."""
    import asyncio

    from callcenter.records import store as store_module

    async def slow(conn: asyncpg.Connection) -> list[object]:
        await asyncio.sleep(0.5)  # as 0017 on years of calls, in miniature
        return await apply_migrations(conn)

    monkeypatch.setattr(store_module, "apply_migrations", slow)
    store = Store(database, max_size=1, timeout=0.2)
    try:
        await store.write(records([CallQueued("M@pbx", "hotline", "139", 1)]))
    finally:
        await store.close()
    conn = await asyncpg.connect(database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM calls WHERE call_id = 'M@pbx'") == 1
    finally:
        await conn.close()
