"""Records PostgreSQL refuses for their data, against a real PostgreSQL: the store says
so (and writes nothing of the batch), the writer sets them aside and keeps the rest, in
order, whether the call process has just journaled them or a previous run left them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from callcenter.acd.events import AgentStateChanged, CallAbandoned, CallOffered, CallQueued
from callcenter.metrics.records import RecordsCollector
from callcenter.records.journal import Journal, main
from callcenter.records.store import Record, Store, StoreRefused, StoreUnavailable, to_record
from callcenter.records.writer import RecordsWriter
from tests.conftest import ManualClock
from tests.records.test_writer import T0, Journaled, _ok, answered_call, migrated, wait_for

REFUSED = "record refused by the database, set aside"


def bad_offer(n: int) -> CallOffered:
    """An offer whose caller name holds a NUL byte, which PostgreSQL's text (and so
    jsonb) refuses: 22P05, UntranslatableCharacterError."""
    return CallOffered(f"bad-{n}@pbx", "hotline", "a9", f"bad-leg-{n}", "139", "Li\x00Lei", 1)


def numbered(events: Sequence[object], boot: str = "b", first: int = 0) -> list[Record]:
    return [to_record(boot, first + i, T0 + first + i, e) for i, e in enumerate(events)]


class RecordingStore(Store):
    """A store that notes the keys of each batch it wrote, in the order written."""

    def __init__(self, dsn: str, **kwargs: Any) -> None:
        super().__init__(dsn, **kwargs)
        self.landed: list[str] = []
        self.writes = 0

    async def write(self, records: Sequence[Record]) -> None:
        self.writes += 1
        await super().write(records)
        self.landed += [r["key"] for r in records]


def without_ring_ticks(events: list[object]) -> list[object]:
    return [e for e in events if type(e).__name__ != "RingTicked"]


def rejected_lines(journal: Journal) -> list[dict[str, Any]]:
    if not journal.rejected.exists():
        return []
    return [json.loads(line) for line in journal.rejected.read_text().splitlines()]


async def fetch(dsn: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


async def assert_answered_call_landed(dsn: str, n: int) -> None:
    """The whole of answered_call(n): its row folded from every event, in order."""
    rows = await fetch(dsn, f"SELECT * FROM calls WHERE call_id = 'call-{n}@pbx'")
    assert len(rows) == 1
    row = rows[0]
    assert (row["outcome"], row["agent_id"], row["talk_seconds"]) == ("answered", "a001", 42.0)
    assert row["caller_name"] == "Li Lei" and row["hung_up_by"] == "caller"


# -- the store ------------------------------------------------------------------------------


def _record_with(field: str, value: object) -> Record:
    record = to_record("b", 99, T0, CallQueued("q@pbx", "hotline", "138", 1))
    if field in ("key", "at"):
        record[field] = value
    else:
        record["event"][field] = value
    return record


BAD_RECORDS = {
    "NUL in jsonb": (to_record("b", 99, T0, bad_offer(1)), "22P05"),
    "NUL in text": (_record_with("call_id", "q\x00@pbx"), "22021"),
    "lone surrogate": (_record_with("call_id", "q" + chr(0xD800)), "22000"),
    "integer out of range": (_record_with("position", 2**40), "22003"),
    "check violation": (
        to_record("b", 99, T0, CallAbandoned("q@pbx", "hotline", 3.0, 0, "queued", None, True)),
        "23514",
    ),
    "time out of range": (_record_with("at", 1e20), None),
    "field missing": (_record_with("caller", None) | {"event": {"call_id": "q@pbx"}}, None),
}


@pytest.mark.parametrize("name", list(BAD_RECORDS))
async def test_the_store_refuses_a_bad_record_and_writes_nothing_of_its_batch(
    database: str, name: str
) -> None:
    await migrated(database)
    store = Store(database)
    bad, sqlstate = BAD_RECORDS[name]
    good = numbered(without_ring_ticks(answered_call(1)))
    # The check violation needs its call's row: it is the first record then.
    batch = [*good[:2], bad, *good[2:]]
    if name == "check violation":
        batch.insert(0, to_record("b", 98, T0, CallQueued("q@pbx", "hotline", "138", 1)))
    try:
        with pytest.raises(StoreRefused) as refused:
            await store.write(batch)
        assert refused.value.sqlstate == sqlstate and refused.value.message
        assert await fetch(database, "SELECT key FROM call_events") == []
        await store.write(good)  # the store still writes
        assert len(await fetch(database, "SELECT key FROM call_events")) == len(good)
    finally:
        await store.close()


async def test_a_missing_table_is_a_database_problem_not_a_refusal(database: str) -> None:
    """An error that is the database's (here a table gone; also a privilege, a full
    disk, a read-only standby) makes the writer journal and retry, never set aside."""
    await migrated(database)
    store = Store(database)
    conn = await asyncpg.connect(database)
    try:
        await conn.execute("ALTER TABLE call_events RENAME TO call_events_away")
        with pytest.raises(StoreUnavailable):
            await store.write(numbered([CallQueued("q@pbx", "hotline", "138", 1)]))
        await conn.execute("ALTER TABLE call_events_away RENAME TO call_events")
        await store.write(numbered([CallQueued("q@pbx", "hotline", "138", 1)]))
        assert await conn.fetchval("SELECT count(*) FROM call_events") == 1
    finally:
        await conn.close()
        await store.close()


# -- the writer -----------------------------------------------------------------------------


async def test_a_refused_record_is_set_aside_and_the_rest_of_its_batch_lands_in_order(
    database: str, tmp_path: Path
) -> None:
    await migrated(database)
    bus = Journaled(tmp_path / "journal", boot="w")
    store = RecordingStore(database)
    clock = ManualClock(wall=T0 + 100)
    writer = RecordsWriter(store, tmp_path / "journal", linger=1.0, clock=clock)
    registry = CollectorRegistry()
    registry.register(RecordsCollector(writer))
    events = answered_call(1)
    events.insert(3, bad_offer(1))  # after the call's queueing and offer, before its answer
    await writer.start()
    try:
        with capture_logs() as logs:
            for i, event in enumerate(events):
                bus.publish(event, T0 + i)
            await wait_for(lambda: _ok(writer.written + writer.rejected == 6))
        # One batch; the good records landed in their order, the bad one did not.
        keys = [f"w:{i + 1}" for i, e in enumerate(events) if type(e).__name__ != "RingTicked"]
        bad_key = "w:4"
        assert store.landed == [k for k in keys if k != bad_key]
        assert (writer.written, writer.rejected) == (5, 1)
        await assert_answered_call_landed(database, 1)
        assert await fetch(database, "SELECT * FROM calls WHERE call_id = 'bad-1@pbx'") == []
        # Set aside, with why and when.
        (line,) = rejected_lines(writer.journal)
        assert line["record"]["key"] == bad_key and line["record"]["kind"] == "CallOffered"
        assert line["record"]["event"]["caller_name"] == "Li\x00Lei"
        assert (line["error"], line["sqlstate"]) == ("UntranslatableCharacterError", "22P05")
        assert "Unicode" in line["message"] and line["at"].startswith("2025-11-23T")
        # Logged, and counted.
        (warning,) = [e for e in logs if e["event"] == REFUSED]
        assert warning["log_level"] == "warning"
        assert (warning["key"], warning["kind"], warning["error"]) == (
            bad_key, "CallOffered", "UntranslatableCharacterError",
        )  # fmt: skip
        assert warning["file"] == str(writer.journal.rejected)
        assert registry.get_sample_value("callcenter_records_rejected_total") == 1
        # The writer goes on with the next batches.
        for i, event in enumerate(answered_call(2)):
            bus.publish(event, T0 + 50 + i)
        await wait_for(lambda: _ok(writer.written == 10))
        await assert_answered_call_landed(database, 2)
        assert writer.rejected == 1 and writer.pending_bytes() == 0
    finally:
        await writer.stop()
        await bus.close()


async def test_a_refused_record_in_a_journal_left_behind_is_set_aside_and_the_writer_goes_on(
    database: str, tmp_path: Path
) -> None:
    await migrated(database)
    journal_dir = tmp_path / "journal"
    # A journal left behind: three calls, a refused record in the second of its
    # batches (batch_size 4) and one in the last.
    events = without_ring_ticks(answered_call(1) + answered_call(2) + answered_call(3))
    events.insert(6, bad_offer(1))
    events.append(bad_offer(2))
    left = numbered(events, boot="dead")
    Journal(journal_dir).append(left)
    bus = Journaled(journal_dir)  # the next run, in a segment of its own
    store = RecordingStore(database)
    writer = RecordsWriter(store, journal_dir, batch_size=4, retry_min=0.05)
    await writer.start()
    try:
        await wait_for(lambda: _ok(len(writer.journal.segments()) == 1))  # the old one is gone
        bad_keys = ["dead:6", f"dead:{len(left) - 1}"]
        assert store.landed == [r["key"] for r in left if r["key"] not in bad_keys]
        assert (writer.written, writer.rejected) == (len(left) - 2, 2)
        for n in (1, 2, 3):
            await assert_answered_call_landed(database, n)
        assert [line["record"]["key"] for line in rejected_lines(writer.journal)] == bad_keys
        # The new run's records follow.
        for i, event in enumerate(answered_call(4)):
            bus.publish(event, T0 + 100 + i)
        await wait_for(lambda: _ok(writer.written == len(left) - 2 + 5))
        await assert_answered_call_landed(database, 4)
    finally:
        await writer.stop()
        await bus.close()


async def test_an_outage_in_the_middle_of_a_refused_batch_sets_the_record_aside_once(
    database: str, tmp_path: Path
) -> None:
    """The database goes away while the writer looks for the refused record: the
    batch is written again when it is back (the half already written, to no effect),
    and the refused record is set aside once."""
    await migrated(database)
    bus = Journaled(tmp_path / "journal", boot="w")

    class FailingOnce(RecordingStore):
        async def write(self, records: Sequence[Record]) -> None:
            if self.writes == 2:  # the whole batch, its first half, then the second half
                self.writes += 1
                raise StoreUnavailable("connection lost")
            await super().write(records)

    store = FailingOnce(database)
    writer = RecordsWriter(store, tmp_path / "journal", linger=1.0, retry_min=0.05)
    events = [*answered_call(1), bad_offer(1)]  # 5 good records, then the refused one
    for i, event in enumerate(events):
        bus.publish(event, T0 + i)
    await writer.start()
    try:
        await wait_for(lambda: _ok(writer.written + writer.rejected == 6))
        assert store.writes > 3 and not writer.backlog  # the outage happened, and passed
        assert (writer.written, writer.rejected) == (5, 1)
        assert [line["record"]["key"] for line in rejected_lines(writer.journal)] == ["w:7"]
        await assert_answered_call_landed(database, 1)
    finally:
        await writer.stop()
        await bus.close()


async def test_many_refused_records_keep_the_writer_going_with_the_log_rate_limited(
    database: str, tmp_path: Path
) -> None:
    await migrated(database)
    bus = Journaled(tmp_path / "journal")
    clock = ManualClock()
    writer = RecordsWriter(
        Store(database), tmp_path / "journal", batch_size=50, clock=clock,
        refusals_logged=3, refusal_window=60.0,
    )  # fmt: skip
    await writer.start()
    try:
        with capture_logs() as logs:
            # Every call's agent reports a state change with a NUL in its reason, in
            # several batches.
            for n in range(30):
                for event in answered_call(n):
                    bus.publish(event, T0 + n)
                bus.publish(AgentStateChanged("a001", "not-ready", "ready", "x\x00"), T0 + n)
                if n % 10 == 9:
                    await asyncio.sleep(0.15)
            await wait_for(lambda: _ok(writer.written + writer.rejected == 30 * 6))
            assert (writer.written, writer.rejected) == (30 * 5, 30)
            assert len(rejected_lines(writer.journal)) == 30
            refused = [e for e in logs if e["event"] == REFUSED]
            paused = [e for e in logs if e["event"].startswith("more records refused")]
            assert len(refused) == 3 and len(paused) == 1
            # A minute later the next refusal is logged again, with the count held back.
            clock.advance(60)
            bus.publish(AgentStateChanged("a001", "ready", "not-ready", "\x00"), T0 + 99)
            await wait_for(lambda: _ok(writer.rejected == 31))
            refused = [e for e in logs if e["event"] == REFUSED]
            assert len(refused) == 4 and refused[-1]["not_logged_before"] == 27
        for n in (0, 15, 29):
            await assert_answered_call_landed(database, n)
    finally:
        await writer.stop()
        await bus.close()


def documented_query() -> str:
    """The query docs/records.md gives for a call's records, with the call's id as $1."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "records.md").read_text()
    query = text.split("```sql\n", 1)[1].split("```", 1)[0]
    assert "'the call''s id'" in query
    return query.replace("'the call''s id'", "$1")


async def test_a_refused_offer_is_whole_after_the_documented_reimport(
    database: str, tmp_path: Path
) -> None:
    await migrated(database)
    journal_dir = tmp_path / "journal"
    events = answered_call(1)
    events[2] = CallOffered("call-1@pbx", "hotline", "a001", "leg-1", "138", "Li\x00Lei", 1)
    bus = Journaled(journal_dir)
    writer = RecordsWriter(Store(database), journal_dir, linger=0.5)
    await writer.start()
    try:
        for i, event in enumerate(events):
            bus.publish(event, T0 + i)
        await wait_for(lambda: _ok(writer.written + writer.rejected == 5))
        assert writer.rejected == 1
    finally:
        await writer.stop()
        await bus.close()  # the service stops
    # The offer opened the leg's row: its answer found none.
    assert await fetch(database, "SELECT * FROM ring_attempts") == []
    # The operator's steps (docs/records.md): move the file away, fix it, add the call's
    # other records, requeue with the service stopped, start it.
    fix = tmp_path / "fix.jsonl"
    Journal(journal_dir).rejected.rename(fix)
    (line,) = [json.loads(text) for text in fix.read_text().splitlines()]
    line["record"]["event"]["caller_name"] = "Li Lei"
    conn = await asyncpg.connect(database)
    try:
        others = [row[0] for row in await conn.fetch(documented_query(), "call-1@pbx")]
    finally:
        await conn.close()
    assert len(others) == 3  # queued, answered, ended
    fix.write_text("\n".join([json.dumps(line), *others]) + "\n")
    assert main(["requeue", str(fix), str(journal_dir)]) == 0
    writer = RecordsWriter(Store(database), journal_dir, retry_min=0.05)
    await writer.start()
    try:
        # Started where the last one stopped: only the requeued records are written.
        await wait_for(lambda: _ok(writer.written == 4))
        assert writer.rejected == 0 and len(writer.journal.segments()) == 1
        await assert_answered_call_landed(database, 1)
        (leg,) = await fetch(database, "SELECT * FROM ring_attempts")
        assert (leg["leg_id"], leg["outcome"], leg["leg_rings"]) == ("leg-1", "answered", 2)
    finally:
        await writer.stop()


async def test_a_connection_left_mid_operation_is_a_database_problem_and_the_pool_starts_afresh(
) -> None:
    # A time-out that cancels a query can leave a pooled connection "in the
    # middle of another operation"; asyncpg then raises InternalClientError on
    # its next use. That must journal the records (StoreUnavailable) and drop
    # the pool, never end the writer or set records aside as refused.
    class Broken:
        async def execute(self, *args: Any) -> None:
            raise asyncpg.InternalClientError(
                "cannot switch to state 12; another operation (2) is in progress"
            )

    class Pool:
        terminated = False

        def acquire(self) -> Any:
            class Acquired:
                async def __aenter__(self) -> Broken:
                    return Broken()

                async def __aexit__(self, *exc: object) -> None:
                    return None

            return Acquired()

        def terminate(self) -> None:
            self.terminated = True

    store = Store("postgresql://unused", timeout=1.0)
    pool = Pool()
    store._pool = pool
    with pytest.raises(StoreUnavailable, match="another operation"):
        await store.write(numbered(answered_call(1)))
    assert pool.terminated and store._pool is None
