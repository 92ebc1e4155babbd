"""Records at real volumes: the reports, the screen pop and the board's "today" on years
of history (issue 21).

    .venv/bin/python bench/records_scale.py              # 10 M calls, 1 M customers, doc block
    .venv/bin/python bench/records_scale.py --quick      # 200,000 calls, a smoke run, no doc

Generates a history into an embedded PostgreSQL (pgserver, as the service starts it)
with set-based SQL (``INSERT ... SELECT generate_series``): --calls calls over the
--days local days before today, in the proportions of a service centre (about 85 %
answered, most within three rings, 8 % abandoned, a few failed, overflowed, turned
away), the ring attempts (one or two per call), the agents' state changes (four per
answered call: ringing, on the call, wrap-up, ready; and a pause a day), the events the
measured SQL reads (the ACD's ``CallEnded`` of each answered call and the state change
out of each wrap-up: not the other events the service writes), --customers customers
with their numbers, the agents' records of most answered calls, their complaints and
suggestions, and the abandoned callers owed a call-back; then --today calls on the
current local day. The secondary indexes of the big tables are built after the load
(the service builds them as it goes), then the database is vacuumed and analyzed.

Measured, each --repeat times (the first read after the load is the cold one):

- a month's report and a year's (12 months): `callcenter.records.reports.gather` if the
  code has it, else the SQL it is built on, part by part (see `stand_in`);
- the screen pop's customer lookup (`CustomerDirectory.lookup`, cache misses only) over
  a pool, one after the other: p50, p99, max;
- the board's "today" at start-up: `queue_stats` and `agent_stats` for today, as the
  supervisor desk reads them (`floor_side.floor`'s `history`);
- the database's size, per table, and per million calls.

The server's data directory is under --dir (deleted at the end unless --keep); the
server is stopped at the end, on error too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import _common as c
from _scale import Result, Scale, gather, run

# -- output -------------------------------------------------------------------------------------


def result_rows(r: Result) -> list[list[object]]:
    rows: list[list[object]] = []
    for t in r.timings:
        verdict = "met" if max(t.runs) <= t.target else "MISSED"
        rows.append([t.name, f"{t.target:g} s", c.fmt(t.runs[0], 2), c.fmt(min(t.runs), 2),
                     verdict])  # fmt: skip
    p99 = c.percentile(r.lookups, 99) * 1e3
    rows.append([
        f"screen pop's customer lookup ({len(r.lookups):,}), p50 / p99 / max ms",
        "p99 5 ms", f"{c.percentile(r.lookups, 50) * 1e3:.2f} / {p99:.2f}",
        f"{max(r.lookups) * 1e3:.2f}", "met" if p99 <= 5 else "MISSED",
    ])  # fmt: skip
    return rows


HEADERS = ["measure", "target", "first run (s)", "best run (s)", ""]


def part_rows(r: Result) -> list[list[object]]:
    return [
        [t.name, name, c.fmt(seconds, 2)] for t in r.timings for name, seconds in t.parts.items()
    ]


def size_rows(r: Result, calls: int) -> list[list[object]]:
    per = 1e6 / max(1, calls)
    rows: list[list[object]] = [
        [name, c.fmt(heap / 1e9, 2), c.fmt(idx / 1e9, 2), c.fmt((heap + idx) * per / 1e6, 0)]
        for name, heap, idx in r.tables
    ]
    rows.append(["whole database", "", "", c.fmt(r.size * per / 1e6, 0)])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--calls", type=int, default=10_000_000, help="calls in the history before today")
    add("--customers", type=int, default=1_000_000)
    add("--days", type=int, default=730, help="local days of history before today")
    add("--today", type=int, default=200_000, help="calls so far today")
    add("--agents", type=int, default=200)
    add("--zone", default="Asia/Shanghai", help="the reports' time zone ([reports] time_zone)")
    add("--repeat", type=int, default=2, help="runs of each measurement")
    add("--dir", type=Path, default=Path("/tmp/bench-scale"),
        help="the embedded PostgreSQL's data directory (made anew)")  # fmt: skip
    add("--keep", action="store_true", help="keep the data directory (and the server stopped)")
    add(
        "--reuse",
        action="store_true",
        help="measure the history an earlier run left with --keep (same scale, same day)",
    )
    add("--parts", action="store_true",
        help="also time the parts of the SQL the report is built on, once each")  # fmt: skip
    add("--lifetime", type=float, default=4 * 3600.0,
        help="seconds after which the run stops itself (and its server)")  # fmt: skip
    add("--quick", action="store_true",
        help="200,000 calls, 20,000 customers, 2,000 today: a smoke run, no doc")  # fmt: skip
    c.add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.calls, args.customers, args.today = 200_000, 20_000, 2_000
    scale = Scale(args.calls, args.customers, args.days, args.today, args.agents)
    doc, quiet, waited, facts = c.begin(args)
    tz = ZoneInfo(args.zone)
    # "Now": 17:00 local today, so that today has its day's calls whatever the hour.
    now = datetime.now(tz).replace(hour=17, minute=0, second=0, microsecond=0).astimezone(UTC)
    import pgserver

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGALRM, stop)
    signal.alarm(int(args.lifetime))
    c.stop_postgres(args.dir)
    if args.dir.exists() and not args.reuse:
        shutil.rmtree(args.dir)
    args.dir.mkdir(parents=True, exist_ok=True)
    started, load = c.today(), c.load_average()
    server = pgserver.get_server(args.dir / "postgres", cleanup_mode="stop")
    try:
        result = asyncio.run(
            run(server.get_uri(), scale, args.zone, now, args.repeat, args.reuse, args.parts)
        )
    finally:
        server.cleanup()
        c.stop_postgres(args.dir)
        if not (args.keep or args.reuse):
            shutil.rmtree(args.dir, ignore_errors=True)
    calls = args.calls + args.today
    measured = (
        "`callcenter.records.reports.gather`"
        if gather is not None
        else "the SQL the report is built on (`records.reports.gather` is not there yet)"
    )
    made = (
        "measured on the history an earlier run generated (--reuse)"
        if args.reuse
        else f"generated in {result.generation / 60:.0f} min"
    )
    print(f"{made}; report measured through {measured}")
    print(f"state hours summarized: {result.summary_hours:,} in {result.summary:.0f} s")
    print(c.text_table(HEADERS, result_rows(result)))
    if any(t.parts for t in result.timings):
        print(c.text_table(["report", "part", "first run (s)"], part_rows(result)))
    size_headers = ["table", "heap GB", "indexes GB", "MB per million calls"]
    print(c.text_table(size_headers, size_rows(result, calls)))
    if doc is None:
        return
    counts = ", ".join(f"{k} {v:,}" for k, v in result.counts.items())
    body = "\n".join([
        f"Command: `{c.command_line()}`",
        "",
        f"- Date: {started}; load average before the run: {load}.",
        c.machine_block(facts, quiet, waited),
        f"- History: {args.calls:,} calls over {args.days} local days ({args.zone}) and"
        f" {args.today:,} today, {args.customers:,} customers, {args.agents} agents;"
        f" rows: {counts}; {made}.",
        f"- The report measured through {measured}.",
        f"- The agents' state hours summed before the measurements (`records.state_hours."
        f"refresh`, as the supervisor desk does at its first start): {result.summary_hours:,}"
        f" hours in {result.summary:.0f} s.",
        "",
        c.md_table(HEADERS, result_rows(result)),
        "",
        *([c.md_table(["report", "part", "first run (s)"], part_rows(result)), ""]
          if any(t.parts for t in result.timings) else []),
        f"Database: {result.size / 1e9:.1f} GB, {result.size / calls * 1e6 / 1e9:.2f} GB"
        " per million calls.",
        "",
        c.md_table(size_headers, size_rows(result, calls)),
    ])  # fmt: skip
    c.update_doc("records_scale", body, doc)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
