"""Calls a crash of the call process left open, closed as interrupted when the
writer meets the next run's first record (issue 16, item 11), against a real
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from callcenter.acd.events import CallAnswered, CallEnded, CallOffered, CallQueued
from callcenter.records.journal import Journal
from callcenter.records.migrate import apply_migrations, migrations
from callcenter.records.stats import queue_stats
from callcenter.records.store import Store, to_record
from callcenter.records.writer import RecordsWriter
from tests.records.test_writer import T0, migrated

# Run A of the call process, killed: call 1 answered and talking, call 2
# ringing agent a002, call 3 over, call 4 answered, its end still in the journal.
RUN_A = [
    CallQueued("call-1", "hotline", "13800000001", 1),
    CallOffered("call-1", "hotline", "a001", "leg-1", "13800000001", None, 1),
    CallAnswered("call-1", "hotline", "a001", "leg-1", 6.0, 2, 2, True),
    CallQueued("call-2", "hotline", "13800000002", 1),
    CallOffered("call-2", "hotline", "a002", "leg-2", "13800000002", None, 1),
    CallQueued("call-3", "hotline", "13800000003", 2),
    CallOffered("call-3", "hotline", "a003", "leg-3", "13800000003", None, 1),
    CallAnswered("call-3", "hotline", "a003", "leg-3", 3.0, 1, 1, True),
    CallEnded("call-3", "hotline", "a003", "caller", 20.0),
    CallQueued("call-4", "hotline", "13800000004", 3),
    CallOffered("call-4", "hotline", "a004", "leg-4", "13800000004", None, 1),
    CallAnswered("call-4", "hotline", "a004", "leg-4", 4.0, 1, 1, True),
]
RUN_A_REST = [CallEnded("call-4", "hotline", "a004", "agent", 30.0)]
# Run B, after the restart: call 5 queued and ringing.
RUN_B = [
    CallQueued("call-5", "hotline", "13800000005", 1),
    CallOffered("call-5", "hotline", "a001", "leg-5", "13800000005", None, 1),
]


def at(n: int) -> datetime:
    return datetime.fromtimestamp(T0 + n, UTC)


async def write_all(database: str, journal_dir: Path) -> RecordsWriter:
    writer = RecordsWriter(Store(database), journal_dir, retry_min=0.05)
    while await writer.write_some():
        pass
    return writer


async def test_a_restart_closes_what_the_crashed_run_left_open_once(
    database: str, tmp_path: Path
) -> None:
    await migrated(database)
    journal_dir = tmp_path / "journal"
    journal = Journal(journal_dir)
    journal.append(to_record("runa", i, T0 + i, e) for i, e in enumerate(RUN_A))
    writer = await write_all(database, journal_dir)  # written before the crash
    await writer.store.close()
    # What run A journaled after the writer's last part, then run B's first records.
    journal.append(
        to_record("runa", len(RUN_A) + i, T0 + 50 + i, e) for i, e in enumerate(RUN_A_REST)
    )
    journal.append(to_record("runb", i, T0 + 100 + i, e) for i, e in enumerate(RUN_B))
    writer = await write_all(database, journal_dir)
    conn = await asyncpg.connect(database)
    try:
        calls = {
            r["call_id"]: (r["outcome"], r["ended_at"], r["answered_at"] is not None)
            for r in await conn.fetch("SELECT * FROM calls")
        }
        assert calls == {
            "call-1": ("interrupted", at(2), True),  # its last record: the answer
            "call-2": ("interrupted", at(4), False),  # the offer
            "call-3": ("answered", at(8), True),
            "call-4": ("answered", at(50), True),  # its real end, from the journal
            "call-5": (None, None, False),  # run B's: untouched
        }
        attempts = {
            r["leg_id"]: (r["outcome"], r["ended_at"])
            for r in await conn.fetch("SELECT * FROM ring_attempts")
        }
        assert attempts["leg-2"] == ("interrupted", at(4))
        assert attempts["leg-5"] == (None, None)
        assert attempts["leg-1"] == ("answered", at(2))
        boots = await conn.fetch("SELECT boot, calls, ring_attempts FROM record_boots ORDER BY 1")
        assert [tuple(r) for r in boots] == [("runa", 0, 0), ("runb", 2, 1)]

        # How they count: offered; answered if answered before the crash; never abandoned.
        [stats] = await queue_stats(conn, at(0), at(200))
        assert (stats.offered, stats.answered, stats.abandoned) == (5, 3, 0)

        # Once: met again (a restarted writer, the same records again), nothing changes.
        await writer.store.close()
        assert await writer.store.met_boot("runb", T0 + 300) is None
        journal.append(to_record("runb", i, T0 + 100 + i, e) for i, e in enumerate(RUN_B))
        await (await write_all(database, journal_dir)).store.close()
        assert await conn.fetchval("SELECT outcome FROM calls WHERE call_id = 'call-5'") is None
    finally:
        await conn.close()
        await writer.store.close()


async def test_runs_written_before_the_upgrade_are_met_already(
    database: str, tmp_path: Path
) -> None:
    """A database from before `record_boots`: the run whose calls are open in it,
    their ends still in the journal, is not taken for a new run at its next
    record (that would close its calls as interrupted before their ends)."""
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(
            "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in migrations():
            if migration.version < 7:
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version, migration.name,
                )  # fmt: skip
        await conn.execute(
            "INSERT INTO call_events (key, call_id, at, kind, data)"
            " VALUES ('old:1', 'call-9', $1, 'CallAnswered', '{}')", at(2),
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO calls (call_id, queue, caller, arrived_at, answered_at, outcome)"
            " VALUES ('call-9', 'hotline', '13800000009', $1, $2, 'answered')", at(0), at(2),
        )  # fmt: skip
        await apply_migrations(conn)  # the upgrade
        journal_dir = tmp_path / "journal"
        journal = Journal(journal_dir)
        journal.append([to_record("old", 2, T0 + 40, CallEnded("call-9", "hotline", "a001",
                                                                 "caller", 38.0))])  # fmt: skip
        journal.append(to_record("new", i, T0 + 100 + i, e) for i, e in enumerate(RUN_B))
        await (await write_all(database, journal_dir)).store.close()
        row = await conn.fetchrow("SELECT outcome, ended_at FROM calls WHERE call_id = 'call-9'")
        assert tuple(row) == ("answered", at(40))
        boots = await conn.fetch("SELECT boot, calls FROM record_boots ORDER BY 1")
        assert [tuple(r) for r in boots] == [("new", 0), ("old", 0)]
    finally:
        await conn.close()
