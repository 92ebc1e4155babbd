"""Records benchmark: the CPU per call of writing call records, on both sides.

    .venv/bin/python bench/records.py            # full run, docs/performance.md block
    .venv/bin/python bench/records.py --quick    # a smoke run, no doc

The records are a stream of answered calls, 7 each (queued, offered, missed,
agent state, offered again, answered, ended), in the order the bus publishes
them when calls arrive at --rate calls/s: the events of concurrent calls
interleave, so a batch holds one or two events of many calls, as the writer's
batches do under load. They are written through `Store` in batches of each
--batch size (one transaction per batch, every statement of the writer,
queue_log included) into a database on an embedded PostgreSQL (pgserver)
that already holds --history earlier calls, vacuumed and analyzed as a
database in service is, so the planner and the indexes see tables of that
size. Measured are the wall time, the CPU time of this process (the service's
side: `Store` and asyncpg) and the CPU time of the PostgreSQL server's
processes (postmaster, backends, WAL writer, checkpointer, autovacuum).

Then the path the service takes (decision 0005): the same calls' events are
published on a bus whose records the journal appender takes, flushed after
every event (the runtime flushes after every step of the core that has
records, which is at most that often), as the call process does, fsyncs in
its thread included; and the records writer writes that journal into another
copy of the database, as the floor process does, measured the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any, NamedTuple

import _common as c
import asyncpg

from callcenter.acd.events import (
    AgentStateChanged,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallQueued,
    OfferEnded,
)
from callcenter.bus import EventBus
from callcenter.records.appender import JournalAppender
from callcenter.records.migrate import apply_migrations
from callcenter.records.store import Store, to_record
from callcenter.records.writer import RecordsWriter

EVENTS_PER_CALL = 7


def call_events(calls: int, rate: float) -> list[tuple[float, object]]:
    """The events of `calls` answered calls arriving at `rate` calls/s, in bus order,
    with their wall-clock times."""
    timeline: list[tuple[float, int, int, object]] = []
    for n in range(calls):
        cid, number, arrived = f"bench-{n}@pbx", f"138{n:08d}", n / rate
        events = (
            (0.0, CallQueued(cid, "hotline", number, 1)),
            (0.0, CallOffered(cid, "hotline", "a001", f"l{n}a", number, None, 1)),
            (10.0, OfferEnded(cid, "a001", f"l{n}a", "missed", 2, 10.0)),
            (10.0, AgentStateChanged("a001", "not-ready", "ringing", "ring-no-answer")),
            (10.0, CallOffered(cid, "hotline", "a002", f"l{n}b", number, None, 3)),
            (12.0, CallAnswered(cid, "hotline", "a002", f"l{n}b", 12.0, 3, 1, True)),
            (72.0, CallEnded(cid, "hotline", "a002", "caller", 60.0, 12.0, f"l{n}b")),
        )
        timeline += [(arrived + at, n, i, event) for i, (at, event) in enumerate(events)]
    timeline.sort(key=lambda item: item[:3])
    t0 = 1_763_900_000.0
    return [(t0 + at, event) for at, _, _, event in timeline]


def call_records(calls: int, rate: float) -> list[dict[str, Any]]:
    """The records of `call_events`, numbered as the bus numbers them."""
    return [
        to_record("bench", seq, wall, event)
        for seq, (wall, event) in enumerate(call_events(calls, rate), 1)
    ]


def _dsn(admin_dsn: str, name: str) -> str:
    base, _, query = admin_dsn.partition("?")
    return base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")


# Calls already in the database: rows like the benchmark's, from before its first one.
HISTORY_SQL = """
INSERT INTO calls (call_id, queue, hotline, caller, caller_e164, queue_position, arrived_at,
                   answered_at, ended_at, rings_to_answer, rings, wait_seconds, talk_seconds,
                   agent_id, outcome, hung_up_by, within_target)
SELECT 'old-' || n || '@pbx', 'hotline', '4000', '139' || lpad(n::text, 8, '0'),
       '+86139' || lpad(n::text, 8, '0'), 1, to_timestamp(1763000000 + n * 0.1),
       to_timestamp(1763000012 + n * 0.1), to_timestamp(1763000072 + n * 0.1), 3, 3, 12, 60,
       'a' || (n % 300), 'answered', 'caller', true
FROM generate_series(1, $1) n;
INSERT INTO ring_attempts (leg_id, call_id, agent_id, offered_at, ended_at, outcome, leg_rings)
SELECT 'old-l' || n || leg, 'old-' || n || '@pbx', 'a' || (n % 300),
       to_timestamp(1763000000 + n * 0.1), to_timestamp(1763000010 + n * 0.1),
       CASE leg WHEN 'a' THEN 'missed' ELSE 'answered' END, 2
FROM generate_series(1, $1) n, (VALUES ('a'), ('b')) l (leg);
INSERT INTO call_events (key, call_id, at, kind, data)
SELECT 'old:' || n || ':' || i, 'old-' || n || '@pbx', to_timestamp(1763000000 + n * 0.1 + i),
       'CallQueued', jsonb_build_object('call_id', 'old-' || n || '@pbx', 'queue', 'hotline',
       'caller', '139' || lpad(n::text, 8, '0'), 'position', 1, 'hotline', '')
FROM generate_series(1, $1) n, generate_series(1, 7) i;
INSERT INTO queue_log (key, time, callid, queuename, agent, event, data1)
SELECT 'old:' || n || ':' || i || ':q0', to_timestamp(1763000000 + n * 0.1 + i),
       'old-' || n || '@pbx', 'hotline', 'a' || (n % 300), 'CONNECT', '12'
FROM generate_series(1, $1) n, generate_series(1, 4) i;
INSERT INTO agent_state_history (key, agent_id, at, state, previous, reason)
SELECT 'old:' || n || ':4', 'a' || (n % 300), to_timestamp(1763000010 + n * 0.1), 'not-ready',
       'ringing', 'ring-no-answer'
FROM generate_series(1, $1) n;
"""


async def history_database(admin_dsn: str, calls: int) -> str:
    """A migrated database holding `calls` earlier calls, vacuumed and analyzed: the
    template of every database the benchmark writes into."""
    name = "bench_history"
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    conn = await asyncpg.connect(_dsn(admin_dsn, name))
    try:
        await apply_migrations(conn)
        for sql in HISTORY_SQL.split(";")[:-1]:
            await conn.execute(sql, calls)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()
    return name


async def fresh_database(admin_dsn: str, name: str, template: str) -> str:
    """A copy of the template, with no dirty buffers left to be written during a phase."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY file_copy')
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return _dsn(admin_dsn, name)


class Phase(NamedTuple):
    name: str
    batch: int
    records: int
    wall: float  # seconds
    cpu: float  # this process, seconds
    pg_cpu: float  # the PostgreSQL server's processes, seconds (NaN: not measured)


class Meter:
    """Wall time and CPU time of this process and of the PostgreSQL server."""

    def __init__(self, postmaster: int | None) -> None:
        self.postmaster = postmaster

    def _now(self) -> tuple[float, float, float]:
        pg = c.tree_cpu(self.postmaster) if self.postmaster else float("nan")
        return time.perf_counter(), time.process_time(), pg

    def start(self) -> None:
        self._start = self._now()

    def phase(self, name: str, batch: int, records: int) -> Phase:
        end = self._now()
        wall, cpu, pg = (b - a for a, b in zip(self._start, end, strict=True))
        return Phase(name, batch, records, wall, cpu, pg)


async def write_all(store: Store, records: list[dict[str, Any]], batch: int) -> None:
    for i in range(0, len(records), batch):
        await store.write(records[i : i + batch])


async def warm(store: Store) -> None:
    """Connect, and prepare every statement, outside the measurement: one call of its own."""
    records = call_records(1, 1.0)
    await store.write([{**r, "key": "warm:" + r["key"]} for r in records])


async def run(
    admin_dsn: str, meter: Meter, calls: int, rate: float, batches: list[int], history: int
) -> list[Phase]:
    records = call_records(calls, rate)
    template = await history_database(admin_dsn, history)
    phases: list[Phase] = []
    for batch in batches:
        dsn = await fresh_database(admin_dsn, f"bench_write_{batch}", template)
        store = Store(dsn, max_size=2)
        await warm(store)
        meter.start()
        await write_all(store, records, batch)
        phases.append(meter.phase("write to PostgreSQL", batch, len(records)))
        await store.close()

    batch = batches[0]
    events = call_events(calls, rate)
    with tempfile.TemporaryDirectory() as tmp:
        bus: EventBus[Any] = EventBus()
        appender = JournalAppender(Path(tmp), "bench")
        appender.start()
        bus.tap(appender)
        meter.start()
        for wall, event in events:
            bus.publish(event, wall)
            bus.flush()
        await appender.close()  # the last fsync, and the thread's, counted
        append = meter.phase("journal appender (call process)", 1, len(records))
        phases.append(append._replace(pg_cpu=float("nan")))
        dsn = await fresh_database(admin_dsn, "bench_replay", template)
        store = Store(dsn, max_size=2)
        await warm(store)
        writer = RecordsWriter(store, Path(tmp), batch_size=batch)
        meter.start()
        while await writer.write_some():
            pass
        phases.append(meter.phase("journal into PostgreSQL (writer)", batch, len(records)))
        await store.close()
    return phases


HEADERS = [
    "measure", "batch", "records/s", "calls/s", "service CPU µs/record", "service CPU ms/call",
    "PostgreSQL CPU µs/record", "PostgreSQL CPU ms/call",
]  # fmt: skip


def row(p: Phase) -> list[object]:
    calls = p.records / EVENTS_PER_CALL
    return [
        p.name, p.batch, c.fmt(p.records / p.wall, 0), c.fmt(calls / p.wall, 0),
        c.fmt(1e6 * p.cpu / p.records, 0), c.fmt(1e3 * p.cpu / calls, 2),
        c.fmt(1e6 * p.pg_cpu / p.records, 0), c.fmt(1e3 * p.pg_cpu / calls, 2),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument(
        "--rate", type=float, default=500.0, help="calls/s at which the calls arrive"
    )
    parser.add_argument(
        "--batch",
        default="500,50",
        help="records per transaction, comma-separated: one write run per size; "
        "the first is also the journal's",
    )
    parser.add_argument(
        "--dsn", default=None, help="a PostgreSQL to use instead of pgserver (CPU not measured)"
    )
    parser.add_argument(
        "--history", type=int, default=50_000, help="calls in the database before the first"
    )
    parser.add_argument("--quick", action="store_true", help="300 calls, 3,000 before, no doc")
    c.add_common_args(parser)
    args = parser.parse_args()
    calls, history = (300, 3000) if args.quick else (args.calls, args.history)
    batches = [int(b) for b in args.batch.split(",")]
    doc, quiet, waited, facts = c.begin(args)
    where = "at --dsn" if args.dsn else "embedded (pgserver)"
    server = None
    dsn = args.dsn
    tmp = tempfile.TemporaryDirectory()
    if dsn is None:
        import pgserver

        server = pgserver.get_server(Path(tmp.name), cleanup_mode="stop")
        dsn = server.get_uri()
    meter = Meter(server.get_pid() if server is not None else None)
    started, load = c.today(), c.load_average()
    try:
        phases = asyncio.run(run(dsn, meter, calls, args.rate, batches, history))
    finally:
        if server is not None:
            server.cleanup()
        tmp.cleanup()
    rows = [row(p) for p in phases]
    print(c.text_table(HEADERS, rows))
    if doc is not None:
        body = "\n".join([
            f"Command: `{c.command_line()}`",
            "",
            f"- Date: {started}; load average before the run: {load}.",
            c.machine_block(facts, quiet, waited),
            f"- {calls:,} calls arriving at {args.rate:g} calls/s, {EVENTS_PER_CALL} records each"
            f" ({calls * EVENTS_PER_CALL:,} records), written into a database that holds"
            f" {history:,} earlier calls (vacuumed and analyzed); PostgreSQL {where}.",
            "",
            c.md_table(HEADERS, rows),
        ])  # fmt: skip
        c.update_doc("records", body, doc)


if __name__ == "__main__":
    main()
