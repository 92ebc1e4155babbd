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
from callcenter.records.appender import JournalAppender
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


class Journaled:
    """The call process's side: a bus whose records the appender journals."""

    def __init__(self, directory: Path, boot: str = "run") -> None:
        self.bus: EventBus[Any] = EventBus()
        self.appender = JournalAppender(directory, boot)
        self.appender.start()
        self.bus.tap(self.appender)

    def publish(self, event: object, wall: float) -> None:
        self.bus.publish(event, wall)
        self.bus.flush()

    async def close(self) -> None:
        await self.appender.close()


async def test_events_become_rows(database: str, tmp_path: Path) -> None:
    await migrated(database)
    source = Journaled(tmp_path / "journal")
    writer = RecordsWriter(Store(database), tmp_path / "journal")
    await writer.start()
    for i, event in enumerate(answered_call(1)):
        source.publish(event, T0 + i)
    source.publish(CallQueued("call-2@pbx", "hotline", "139", 2), T0 + 10)
    source.publish(CallAbandoned("call-2@pbx", "hotline", 3.0, 1, "queued", None, True), T0 + 13)
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
        await source.close()


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
    source = Journaled(tmp_path / "journal")
    store = Store(database)
    batches: list[int] = []
    real_write = store.write

    async def write(records: list[dict[str, Any]]) -> None:
        batches.append(len(records))
        await real_write(records)

    store.write = write  # type: ignore[method-assign]
    writer = RecordsWriter(store, tmp_path / "journal", linger=1.0)
    source.publish(CallQueued("call-0@pbx", "hotline", "139", 1), T0)
    await writer.start()
    try:
        await wait_for(lambda: _ok(writer.written == 1))  # caught up: it lingers
        for n in range(1, 5):  # 20 records over about 0.1 s
            for event in answered_call(n):
                source.publish(event, T0 + n)
            await asyncio.sleep(0.02)
        await wait_for(lambda: _ok(writer.written == 21))
        assert batches == [1, 20]
    finally:
        await writer.stop()
        await source.close()


async def test_stop_cuts_the_linger_short_and_writes_what_the_journal_holds(
    database: str, tmp_path: Path
) -> None:
    await migrated(database)
    source = Journaled(tmp_path / "journal")
    writer = RecordsWriter(Store(database), tmp_path / "journal", linger=60.0)
    await writer.start()
    await asyncio.sleep(0.05)  # nothing to write: the writer lingers
    for i, event in enumerate(answered_call(1)):
        source.publish(event, T0 + i)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await writer.stop()
    assert loop.time() - started < 5
    assert writer.written == 5  # every record; the ring tick is none
    conn = await asyncpg.connect(database)
    try:
        assert await conn.fetchval("SELECT count(*) FROM call_events") == 5
    finally:
        await conn.close()
        await source.close()


async def _count(conn: asyncpg.Connection, sql: str, expected: int) -> bool:
    return bool(await conn.fetchval(sql) == expected)


async def test_burst_through_a_database_outage_lands_every_call_exactly_once(
    own_postgres: Any, tmp_path: Path
) -> None:
    await migrated(own_postgres.dsn)
    # Small segments: the burst spans several, sealed and removed as they are written.
    source = Journaled(tmp_path / "journal")
    source.appender.rotate_bytes = 4096
    store = Store(own_postgres.dsn, timeout=1.0)
    writer = RecordsWriter(store, tmp_path / "journal", retry_min=0.2, retry_max=0.5)
    await writer.start()
    published = 0
    outage = False
    for n in range(60):
        if n == 20:
            await asyncio.to_thread(own_postgres.stop)  # PostgreSQL goes down mid-burst
        if n == 45:
            outage = writer.backlog and writer.pending_bytes() > 0
            await asyncio.to_thread(own_postgres.start)  # … and comes back
        for event in answered_call(n):
            source.publish(event, T0 + n + published * 1e-3)
            published += 1
        await asyncio.sleep(0.02)
    conn = await asyncpg.connect(own_postgres.dsn)
    try:
        await wait_for(
            lambda: _count(conn, "SELECT count(*) FROM calls WHERE ended_at IS NOT NULL", 60), 60
        )
        assert outage  # the records waited in the journal while the database was down
        await wait_for(lambda: _ok(not writer.backlog and writer.pending_bytes() == 0))
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
        await source.close()
    assert len(writer.journal.segments()) == 1  # only the appender's open one is left


async def test_a_journal_left_by_a_killed_process_is_written_at_start(
    database: str, tmp_path: Path
) -> None:
    await migrated(database)
    journal_dir = tmp_path / "journal"
    from callcenter.records.journal import Journal

    Journal(journal_dir).append(
        to_record("dead", i, T0 + i, e) for i, e in enumerate(answered_call(3))
    )
    with (journal_dir / "journal-000001.log").open("ab") as f:
        f.write(b'0badc0de {"key": "torn')  # the killed process's last write, cut short
    source = Journaled(journal_dir)  # the next run: a segment of its own
    writer = RecordsWriter(Store(database), journal_dir, retry_min=0.05)
    await writer.start()
    conn = await asyncpg.connect(database)
    try:
        await wait_for(
            lambda: _count(conn, "SELECT count(*) FROM calls WHERE outcome = 'answered'", 1)
        )
        await wait_for(lambda: _ok(len(writer.journal.segments()) == 1))
        assert writer.torn == 1 and writer.corrupt == 0
    finally:
        await conn.close()
        await writer.stop()
        await source.close()


async def _ok(value: bool) -> bool:
    return value


async def test_sigkill_mid_burst_loses_nothing_that_was_flushed(
    database: str, tmp_path: Path
) -> None:
    """A process killed with SIGKILL mid-burst: every record it had flushed to
    the journal (what the runtime does before a step's datagrams go out) is in
    the database after a writer starts, once."""
    import signal
    import subprocess
    import sys

    await migrated(database)
    journal = tmp_path / "journal"
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.records.burst_child", str(journal)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    flushed: list[str] = []
    try:
        loop = asyncio.get_running_loop()
        assert child.stdout is not None
        stdout = child.stdout

        async def read_keys(total: int) -> None:
            while len(flushed) < total:
                line = (await loop.run_in_executor(None, stdout.readline)).strip()
                if line.startswith("child:"):  # not the child's log lines
                    flushed.append(line)

        await read_keys(800)
        child.send_signal(signal.SIGKILL)  # the process is killed mid-burst
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
    writer = RecordsWriter(Store(database), journal, retry_min=0.05)
    await writer.start()
    conn = await asyncpg.connect(database)
    try:
        await wait_for(lambda: _ok(writer.pending_bytes() == 0), 30)
        keys = [r["key"] for r in await conn.fetch("SELECT key FROM call_events")]
        assert [k for k in flushed if k not in set(keys)] == []
        assert len(set(keys)) == len(keys) >= len(flushed)  # none twice
    finally:
        await conn.close()
        await writer.stop()


async def test_a_writer_that_fails_unexpectedly_goes_on_and_stops_in_time(
    database: str, tmp_path: Path
) -> None:
    """Issue 16, item 10: the writer stopped writing for good, with no log line, and a
    stop that hung. A pass that fails for another reason than the database's or the
    disk's is logged, counted and retried; a database that never closes its
    connections does not hold up the stop beyond its time-out."""
    from structlog.testing import capture_logs

    await migrated(database)
    side = Journaled(tmp_path / "journal")
    store = Store(database)
    writer = RecordsWriter(store, tmp_path / "journal", retry_min=0.05, retry_max=0.1, linger=0.01)
    real_store = writer._store
    broken = [3]

    async def flaky(records: Any) -> int:
        if broken[0]:
            broken[0] -= 1
            raise RuntimeError("a defect")
        return await real_store(records)

    writer._store = flaky  # type: ignore[method-assign]
    with capture_logs() as logs:
        await writer.start()
        for n, event in enumerate(answered_call(1)):
            side.publish(event, T0 + n)

        async def written() -> bool:
            conn = await asyncpg.connect(database)
            try:
                ended = "SELECT count(*) FROM calls WHERE ended_at IS NOT NULL"
                return bool(await conn.fetchval(ended) == 1)
            finally:
                await conn.close()

        await wait_for(written)
        assert writer.failures == 3
        failed = [e["failures"] for e in logs if e["event"] == "records writer failed; retrying"]
        assert failed == [1, 2, 3]

        async def never_closes() -> None:
            await asyncio.sleep(3600)

        closing = store.close
        store.close = never_closes  # type: ignore[method-assign]
        loop = asyncio.get_running_loop()
        started = loop.time()
        await writer.stop(timeout=0.5)
        assert loop.time() - started < 2.0
        store.close = closing  # type: ignore[method-assign]
    await side.close()


async def test_a_position_the_disk_refuses_is_logged_a_few_times_a_minute(
    database: str, tmp_path: Path
) -> None:
    """On a really full disk the writer's position file was refused after every
    part written, and each refusal logged: a line per batch while a backlog is
    written. The records are written all the same (a restart only starts
    earlier, every write being idempotent); the log says so a few times a minute."""
    from structlog.testing import capture_logs

    await migrated(database)
    side = Journaled(tmp_path / "journal")
    # What a full disk does to the position's temporary file: no write there.
    (tmp_path / "journal" / "writer.new").mkdir()
    writer = RecordsWriter(Store(database), tmp_path / "journal", read_bytes=300, linger=0.01)
    try:
        with capture_logs() as logs:
            for n in range(1, 11):
                for k, event in enumerate(answered_call(n)):
                    side.publish(event, T0 + 10 * n + k)
            await writer.start()

            async def written() -> bool:
                return writer.written == 50

            await wait_for(written)
    finally:
        await writer.stop()
        await side.close()
    refused = [e for e in logs if e["event"] == "writer's position not saved"]
    assert len(refused) == 5, len(refused)
