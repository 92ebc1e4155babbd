"""Records benchmark: rows written per second, journal append and replay speed.

    .venv/bin/python bench/records.py            # full run
    .venv/bin/python bench/records.py --quick    # a smoke run

Writes through `Store` (one transaction per batch, every statement of the
writer) into a fresh embedded PostgreSQL (pgserver) in a temporary directory,
or the server named by --dsn; appends the same records to a journal with
fsync per batch; then replays the journal into another fresh database.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg

from callcenter.acd.events import (
    AgentStateChanged,
    CallAnswered,
    CallEnded,
    CallOffered,
    CallQueued,
    OfferEnded,
)
from callcenter.records.journal import Journal
from callcenter.records.migrate import apply_migrations
from callcenter.records.store import Store, to_record


def call_records(calls: int) -> list[dict[str, Any]]:
    out, seq, t = [], 0, 1_763_900_000.0
    for n in range(calls):
        cid = f"bench-{n}@pbx"
        for event in (
            CallQueued(cid, "hotline", f"138{n:08d}", 1),
            CallOffered(cid, "hotline", "a001", f"l{n}a", f"138{n:08d}", None, 1),
            OfferEnded(cid, "a001", f"l{n}a", "missed", 2, 10.0),
            AgentStateChanged("a001", "not-ready", "ringing", "ring-no-answer"),
            CallOffered(cid, "hotline", "a002", f"l{n}b", f"138{n:08d}", None, 3),
            CallAnswered(cid, "hotline", "a002", f"l{n}b", 12.0, 3, 1, True),
            CallEnded(cid, "hotline", "a002", "caller", 60.0, 12.0),
        ):
            seq += 1
            out.append(to_record("bench", seq, t + seq * 0.01, event))
    return out


async def fresh_database(admin_dsn: str, name: str) -> str:
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base, _, query = admin_dsn.partition("?")
    dsn = base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")
    conn = await asyncpg.connect(dsn)
    try:
        await apply_migrations(conn)
    finally:
        await conn.close()
    return dsn


async def run(admin_dsn: str, calls: int, batch: int) -> dict[str, float]:
    records = call_records(calls)
    results: dict[str, float] = {"records": len(records), "calls": calls, "batch": batch}

    dsn = await fresh_database(admin_dsn, "bench_write")
    store = Store(dsn, max_size=2)
    start = time.perf_counter()
    for i in range(0, len(records), batch):
        await store.write(records[i : i + batch])
    results["write_s"] = time.perf_counter() - start
    await store.close()

    with tempfile.TemporaryDirectory() as tmp:
        journal = Journal(Path(tmp))
        start = time.perf_counter()
        for i in range(0, len(records), batch):
            journal.append(records[i : i + batch])
        results["append_s"] = time.perf_counter() - start
        results["journal_mb"] = journal.size_bytes() / 1e6
        dsn = await fresh_database(admin_dsn, "bench_replay")
        store = Store(dsn, max_size=2)
        start = time.perf_counter()
        entries = journal.start_replay()
        read_s = time.perf_counter() - start
        for i in range(0, len(entries.records), batch):
            await store.write(entries.records[i : i + batch])
        journal.commit_replay(entries)
        results["replay_s"] = time.perf_counter() - start
        results["replay_read_s"] = read_s
        await store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--dsn", default=None, help="a PostgreSQL to use instead of pgserver")
    parser.add_argument("--quick", action="store_true", help="300 calls")
    args = parser.parse_args()
    calls = 300 if args.quick else args.calls
    server = None
    dsn = args.dsn
    tmp = tempfile.TemporaryDirectory()
    if dsn is None:
        import pgserver

        server = pgserver.get_server(Path(tmp.name), cleanup_mode="stop")
        dsn = server.get_uri()
    try:
        r = asyncio.run(run(dsn, calls, args.batch))
    finally:
        if server is not None:
            server.cleanup()
        tmp.cleanup()
    n = r["records"]
    print(f"records: {n:.0f} ({r['calls']:.0f} calls, 7 events each), batch {r['batch']:.0f}")
    print(
        f"write to PostgreSQL:   {n / r['write_s']:10.0f} records/s  ({r['calls'] / r['write_s']:.0f} calls/s)"
    )
    print(f"journal append+fsync:  {n / r['append_s']:10.0f} records/s  ({r['journal_mb']:.1f} MB)")
    print(
        f"journal replay to DB:  {n / r['replay_s']:10.0f} records/s  (reading {n / r['replay_read_s']:.0f}/s)"
    )
    print(f"python {platform.python_version()}, {platform.machine()}")


if __name__ == "__main__":
    main()
