"""The records writer against a real PostgreSQL: rows, an outage mid-burst, a crash."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg

from callcenter.acd.events import (
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallQueued,
    RingTicked,
)
from callcenter.bus import EventBus
from callcenter.records.migrate import apply_migrations
from callcenter.records.store import Store, to_record
from callcenter.records.writer import RecordsWriter

T0 = 1_763_900_000.0


def answered_call(n: int) -> list[object]:
    cid = f"call-{n}@pbx"
    return [
        CallQueued(cid, "hotline", f"1380000{n:04d}", 1),
        RingTicked(cid, 1),  # not a record
        CallOffered(cid, "hotline", "a001", f"leg-{n}", f"1380000{n:04d}", "Li Lei", 1),
        AgentStateChanged("a001", "reserved", "ready", None),
        CallAnswered(cid, "hotline", "a001", f"leg-{n}", 6.0, 2, 2, True),
        CallEnded(cid, "hotline", "a001", "caller", 42.0),
    ]


async def migrated(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()


async def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await predicate():
        assert loop.time() < end, "timed out"
        await asyncio.sleep(0.05)


async def test_events_become_rows(database: str, tmp_path: Path) -> None:
    await migrated(database)
    bus: EventBus[Any] = EventBus()
    writer = RecordsWriter(bus, Store(database), tmp_path / "journal")
    await writer.start()
    for i, event in enumerate(answered_call(1)):
        bus.publish(event, T0 + i)
    bus.publish(CallQueued("call-2@pbx", "hotline", "139", 2), T0 + 10)
    bus.publish(CallAbandoned("call-2@pbx", "hotline", 3.0, 1, "queued", None, True), T0 + 13)
    conn = await asyncpg.connect(database)
    try:
        await wait_for(
            lambda: _count(conn, "SELECT count(*) FROM calls WHERE ended_at IS NOT NULL", 2)
        )
        row = await conn.fetchrow("SELECT * FROM calls WHERE call_id = 'call-1@pbx'")
        assert row["outcome"] == "answered" and row["agent_id"] == "a001"
        assert (row["rings_to_answer"], row["wait_seconds"], row["talk_seconds"]) == (2, 6.0, 42.0)
        assert row["within_target"] and row["hung_up_by"] == "caller"
        assert row["caller_name"] == "Li Lei"
        assert row["arrived_at"].timestamp() == T0
        ab = await conn.fetchrow("SELECT * FROM calls WHERE call_id = 'call-2@pbx'")
        assert (ab["outcome"], ab["rings"], ab["abandoned_where"], ab["wait_seconds"]) == (
            "short-abandon", 1, "queued", 3.0,
        )  # fmt: skip
        leg = await conn.fetchrow("SELECT * FROM ring_attempts WHERE leg_id = 'leg-1'")
        assert (leg["outcome"], leg["leg_rings"]) == ("answered", 2)
        kinds = [r["kind"] for r in await conn.fetch("SELECT kind FROM call_events ORDER BY at")]
        assert "RingTicked" not in kinds and kinds[0] == "CallQueued"
        assert await conn.fetchval("SELECT count(*) FROM agent_state_history") == 1
        assert row["caller_e164"] == "+86138000001" or row["caller_e164"].startswith("+86")
        # The Asterisk-compatible queue_log, in order.
        log = await conn.fetch(
            "SELECT callid, queuename, agent, event, data1, data2, data3 FROM queue_log ORDER BY time"
        )
        assert [(r["callid"], r["event"]) for r in log] == [
            ("call-1@pbx", "ENTERQUEUE"),
            ("call-1@pbx", "CONNECT"),
            ("call-1@pbx", "COMPLETECALLER"),
            ("call-2@pbx", "ENTERQUEUE"),
            ("call-2@pbx", "ABANDON"),
        ]
        connect, complete, abandon = log[1], log[2], log[4]
        assert (connect["agent"], connect["data1"], connect["data2"], connect["data3"]) == (
            "a001",
            "6",
            "leg-1",
            "2",
        )
        assert (complete["queuename"], complete["data1"], complete["data2"], complete["data3"]) == (
            "hotline",
            "0",
            "42",
            "1",
        )
        assert (abandon["data1"], abandon["data2"], abandon["data3"]) == ("1", "2", "3")
    finally:
        await conn.close()
        await writer.stop()


async def test_writing_the_same_records_twice_changes_nothing(database: str) -> None:
    await migrated(database)
    store = Store(database)
    records = [to_record("boot", i, T0 + i, e) for i, e in enumerate(answered_call(7))]
    await store.write(records)
    await store.write(records)  # a replay of what was already stored
    conn = await asyncpg.connect(database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM calls") == 1
        assert await conn.fetchval("SELECT count(*) FROM call_events") == len(records)
        assert await conn.fetchval("SELECT count(*) FROM ring_attempts") == 1
    finally:
        await conn.close()
        await store.close()


async def test_records_arriving_within_the_linger_go_in_one_batch(
    database: str, tmp_path: Path
) -> None:
    await migrated(database)
    bus: EventBus[Any] = EventBus()
    store = Store(database)
    batches: list[int] = []
    real_write = store.write

    async def write(records: list[dict[str, Any]]) -> None:
        batches.append(len(records))
        await real_write(records)

    store.write = write  # type: ignore[method-assign]
    writer = RecordsWriter(bus, store, tmp_path / "journal", linger=1.0)
    await writer.start()
    try:
        for n in range(5):  # 25 records over about 0.1 s
            for event in answered_call(n):
                bus.publish(event, T0 + n)
            await asyncio.sleep(0.02)
        await wait_for(lambda: _ok(writer.written == 25))
        assert batches == [25]
    finally:
        await writer.stop()


async def test_stop_cuts_the_linger_short_and_writes_what_the_writer_holds(
    database: str, tmp_path: Path
) -> None:
    await migrated(database)
    bus: EventBus[Any] = EventBus()
    settled: list[int] = []
    writer = RecordsWriter(
        bus, Store(database), tmp_path / "journal", linger=60.0, on_settled=settled.append
    )
    await writer.start()
    for i, event in enumerate(answered_call(1)):
        bus.publish(event, T0 + i)
    await asyncio.sleep(0.05)  # the writer holds the first record and waits for more
    loop = asyncio.get_running_loop()
    started = loop.time()
    await writer.stop()
    assert loop.time() - started < 5
    assert (writer.written, writer.journaled) == (5, 0)
    assert settled[-1] == bus.published  # every event taken care of, ring tick included
    conn = await asyncpg.connect(database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM call_events") == 5
    finally:
        await conn.close()


async def _count(conn: asyncpg.Connection, sql: str, expected: int) -> bool:
    return bool(await conn.fetchval(sql) == expected)


async def test_burst_through_a_database_outage_lands_every_call_exactly_once(
    own_postgres: Any, tmp_path: Path
) -> None:
    await migrated(own_postgres.dsn)
    bus: EventBus[Any] = EventBus()
    store = Store(own_postgres.dsn, timeout=1.0)
    settled: list[int] = []
    writer = RecordsWriter(
        bus, store, tmp_path / "journal", retry_min=0.2, retry_max=0.5, on_settled=settled.append
    )
    await writer.start()
    published = 0
    for n in range(60):
        if n == 20:
            await asyncio.to_thread(own_postgres.stop)  # PostgreSQL goes down mid-burst
        if n == 45:
            await asyncio.to_thread(own_postgres.start)  # … and comes back
        for event in answered_call(n):
            bus.publish(event, T0 + n + published * 1e-3)
            published += 1
        await asyncio.sleep(0.02)
    conn = await asyncpg.connect(own_postgres.dsn)
    try:
        await wait_for(
            lambda: _count(conn, "SELECT count(*) FROM calls WHERE ended_at IS NOT NULL", 60), 60
        )
        assert writer.journaled > 0 and writer.replayed > 0  # the outage really happened
        # Written or journaled, in order: what the floor process acknowledges
        # (told once the write returns, a moment after its rows are visible).
        await wait_for(lambda: _ok(bool(settled) and settled[-1] == bus.published))
        assert settled == sorted(settled)
        await wait_for(lambda: _ok(not writer.backlog))
        assert await conn.fetchval("SELECT count(*) FROM calls") == 60
        recorded_per_call = 5  # every event of answered_call but the ring tick
        assert await conn.fetchval("SELECT count(*) FROM call_events") == 60 * recorded_per_call
        # Events of one call are in order.
        kinds = [
            r["kind"]
            for r in await conn.fetch(
                "SELECT kind FROM call_events WHERE call_id = 'call-30@pbx' ORDER BY at"
            )
        ]
        assert kinds == ["CallQueued", "CallOffered", "CallAnswered", "CallEnded"]
    finally:
        await conn.close()
        await writer.stop()
    assert writer.journal.segments() == []


async def test_a_journal_left_by_a_killed_process_is_replayed_at_start(
    database: str, tmp_path: Path
) -> None:
    await migrated(database)
    journal_dir = tmp_path / "journal"
    from callcenter.records.journal import Journal

    Journal(journal_dir).append(
        to_record("dead", i, T0 + i, e) for i, e in enumerate(answered_call(3))
    )
    bus: EventBus[Any] = EventBus()
    writer = RecordsWriter(bus, Store(database), journal_dir, retry_min=0.05)
    assert writer.backlog
    await writer.start()
    conn = await asyncpg.connect(database)
    try:
        await wait_for(
            lambda: _count(conn, "SELECT count(*) FROM calls WHERE outcome = 'answered'", 1)
        )
    finally:
        await conn.close()
        await writer.stop()


async def _ok(value: bool) -> bool:
    return value


async def test_sigkill_mid_burst_loses_nothing_that_was_acknowledged(
    own_postgres: Any, tmp_path: Path
) -> None:
    """A process killed with SIGKILL while writing: every record it acknowledged
    (in the database or fsync'd to the journal) is in the database after a restart,
    including those written while the database was down."""
    import signal
    import subprocess
    import sys

    await migrated(own_postgres.dsn)
    journal = tmp_path / "journal"
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.records.burst_child", own_postgres.dsn, str(journal)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    acked: list[str] = []
    try:
        loop = asyncio.get_running_loop()
        assert child.stdout is not None
        stdout = child.stdout

        async def read_keys(total: int) -> None:
            while len(acked) < total:
                line = (await loop.run_in_executor(None, stdout.readline)).strip()
                if line.startswith("child:"):  # not the child's log lines
                    acked.append(line)

        await read_keys(400)
        await asyncio.to_thread(own_postgres.stop)  # the database goes down mid-burst …
        await read_keys(800)
        child.send_signal(signal.SIGKILL)  # … and the service is killed
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    await asyncio.to_thread(own_postgres.start)
    # A restarted writer replays what the killed one journaled.
    bus: EventBus[Any] = EventBus()
    writer = RecordsWriter(bus, Store(own_postgres.dsn), journal, retry_min=0.05)
    await writer.start()
    conn = await asyncpg.connect(own_postgres.dsn)
    try:
        await wait_for(lambda: _ok(not writer.backlog), 30)
        stored = {r["key"] for r in await conn.fetch("SELECT key FROM call_events")}
        missing = [k for k in acked if k and k not in stored]
        assert missing == []
        assert len(set(acked)) == len(acked)  # and none twice
    finally:
        await conn.close()
        await writer.stop()
