"""The history bench/records_scale.py measures: generated with set-based SQL into a
migrated database, and the measurements, apart from the script's command line and
docs so that a test runs them at a tiny scale (tests/records/test_records_scale.py).
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from callcenter.records import callbacks, complaints
from callcenter.records.customers import CustomerDirectory
from callcenter.records.database import reset_connection
from callcenter.records.migrate import apply_migrations
from callcenter.records.state_hours import refresh, state_seconds, wrap_ups
from callcenter.records.stats import agent_stats, queue_stats
from callcenter.reports.period import Period, days, month

try:  # the report's SQL (issue 21), once it is there
    from callcenter.records.reports import gather  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    gather = None

QUEUES = ("hotline", "billing", "repairs", "complaints")
TABLES = ("calls", "ring_attempts", "call_events", "agent_state_history", "call_forms")
CHUNK = 500_000  # calls per INSERT: progress, and bounded transactions

# -- generation -------------------------------------------------------------------------------

# One row per call, its random draws kept so that every table derives from the same
# call: n numbers the calls in time order ($1..$2 of this chunk). Arrivals are local
# days ($3: the first local midnight, as the session's time zone reads it; $4 days),
# 90 % between 08:00 and 20:00. 80 % of callers are customers on file ($5 customers).
GEN = """
INSERT INTO bench_gen
SELECT n, $3::timestamptz + ((n - $6) * $4::bigint / ($8 - $6 + 1)) * interval '1 day'
          + make_interval(secs => CASE WHEN random() < 0.9 THEN 28800 + random() * 43200
                                       ELSE random() * 86400 END),
       random(), random(), random(), random(),
       1 + floor(random() * $7)::int,
       CASE WHEN random() < 0.8 THEN 1 + floor(random() * $5)::bigint END,
       floor(random() * 100000000)::bigint
FROM generate_series($1::bigint, $2::bigint) n
"""

# The outcome (r1): 85 % answered, 6 % abandoned, 2 % short abandons, 2 % overflowed,
# 1 % failed (the PBX's timer), 2 % closed, 1 % nobody there, 1 % rejected. Answered at
# ring 1 (50 %), 2 (30 %), 3 (12 %) or later (r2); a ring is 6 s.
CALLS = """
INSERT INTO calls (call_id, queue, hotline, caller, caller_e164, queue_position, arrived_at,
                   answered_at, ended_at, rings_to_answer, rings, abandoned_where,
                   wait_seconds, talk_seconds, agent_id, outcome, hung_up_by, within_target,
                   breached)
SELECT call_id, queue, '12345', substr(e164, 4), e164, 1 + floor(r3 * 4)::int, arrived,
       CASE WHEN outcome = 'answered' THEN arrived + make_interval(secs => wait) END,
       arrived + make_interval(secs => wait + coalesce(talk, 0)),
       CASE WHEN outcome = 'answered' THEN rta END,
       CASE WHEN outcome IN ('answered', 'abandoned', 'short-abandon', 'pbx-timeout')
            THEN greatest(1, ceil(wait / 6))::int END,
       CASE WHEN outcome IN ('abandoned', 'short-abandon')
            THEN CASE WHEN r3 < 0.5 THEN 'ringing' ELSE 'queued' END END,
       wait, talk, CASE WHEN outcome = 'answered' THEN agent_id END, outcome,
       CASE WHEN outcome = 'answered' THEN CASE WHEN r3 < 0.8 THEN 'caller' ELSE 'agent' END
            WHEN outcome IN ('abandoned', 'short-abandon') THEN 'caller'
            WHEN outcome = 'pbx-timeout' THEN 'pbx' END,
       CASE WHEN outcome = 'answered' THEN rta <= 3
            WHEN outcome IN ('abandoned', 'short-abandon') THEN false END,
       (outcome = 'answered' AND rta > 3) OR (outcome = 'abandoned' AND wait > 18)
FROM (
  SELECT g.*, 'c' || lpad(g.n::text, 10, '0') || '@pbx' AS call_id,
         (ARRAY['hotline', 'billing', 'repairs', 'complaints'])[1 + floor(g.r4 * 4)::int]
           AS queue,
         CASE WHEN g.customer IS NULL THEN '+86139' || lpad(g.stranger::text, 8, '0')
              ELSE '+86138' || lpad(g.customer::text, 8, '0') END AS e164,
         'a' || lpad(g.agent::text, 3, '0') AS agent_id,
         o.outcome, o.rta,
         CASE o.outcome WHEN 'answered' THEN (o.rta - 1) * 6 + g.r3 * 6
                        WHEN 'abandoned' THEN 5 + g.r3 * 60
                        WHEN 'short-abandon' THEN g.r3 * 5
                        WHEN 'pbx-timeout' THEN 60
                        WHEN 'overflow' THEN 30 + g.r3 * 30
                        ELSE 0 END AS wait,
         CASE WHEN o.outcome = 'answered' THEN 20 + (-ln(1 - g.r3)) * 180 END AS talk
    FROM bench_gen g
    CROSS JOIN LATERAL (SELECT
         CASE WHEN g.r1 < 0.85 THEN 'answered' WHEN g.r1 < 0.91 THEN 'abandoned'
              WHEN g.r1 < 0.93 THEN 'short-abandon' WHEN g.r1 < 0.95 THEN 'overflow'
              WHEN g.r1 < 0.96 THEN 'pbx-timeout' WHEN g.r1 < 0.98 THEN 'closed'
              WHEN g.r1 < 0.99 THEN 'no-agent' ELSE 'rejected' END AS outcome,
         CASE WHEN g.r2 < 0.5 THEN 1 WHEN g.r2 < 0.8 THEN 2 WHEN g.r2 < 0.92 THEN 3
              ELSE 4 + floor(g.r3 * 3)::int END AS rta) o
   WHERE g.n BETWEEN $1 AND $2) x
"""

# Ring attempts: the answered one; before it, for a fifth of the calls answered at ring
# 3 or later, a missed offer to the next agent; a cancelled one for the abandons heard
# ringing.
RING_ATTEMPTS = """
INSERT INTO ring_attempts (leg_id, call_id, agent_id, offered_at, rang_at, ended_at, outcome,
                           leg_rings, talk_seconds, hung_up_by)
SELECT 'l' || substr(c.call_id, 2, 10) || 'b', c.call_id, c.agent_id,
       c.answered_at - make_interval(secs => least(c.wait_seconds, 12)),
       c.answered_at - make_interval(secs => least(c.wait_seconds, 12)),
       c.answered_at, 'answered', least(c.rings_to_answer, 3), c.talk_seconds, c.hung_up_by
  FROM calls c
 WHERE c.call_id BETWEEN $1 AND $2 AND c.outcome = 'answered'
UNION ALL
SELECT 'l' || substr(c.call_id, 2, 10) || 'a', c.call_id,
       'a' || lpad((1 + substr(c.agent_id, 2)::int % $3)::text, 3, '0'),
       c.arrived_at, c.arrived_at, c.arrived_at + interval '12 seconds', 'missed', 2, NULL, NULL
  FROM calls c
 WHERE c.call_id BETWEEN $1 AND $2 AND c.outcome = 'answered' AND c.rings_to_answer >= 3
   AND substr(c.call_id, 11, 1) IN ('0', '5')
UNION ALL
SELECT 'l' || substr(c.call_id, 2, 10) || 'a', c.call_id,
       'a' || lpad((1 + abs(hashtext(c.call_id)) % $3)::text, 3, '0'),
       c.arrived_at, c.arrived_at, c.ended_at, 'cancelled', c.rings, NULL, NULL
  FROM calls c
 WHERE c.call_id BETWEEN $1 AND $2 AND c.abandoned_where = 'ringing'
"""

# An answered call's agent: ready -> ringing at the offer, -> on-call at the answer,
# -> wrap-up at the end, -> ready after 10-70 s of wrap-up; each change keyed
# "<process>:<seq>" as the service keys them (a process a local day). The change out of
# wrap-up is an event too (its seconds), as is the ACD's CallEnded (talk seconds).
STATES = """
WITH s AS (
INSERT INTO agent_state_history (key, agent_id, at, state, previous, reason)
SELECT 'b' || lpad(x.day::text, 4, '0') || ':' || lpad((4 * x.n + s.i)::text, 11, '0'),
       c.agent_id,
       CASE s.i WHEN 0 THEN r.offered_at WHEN 1 THEN c.answered_at WHEN 2 THEN c.ended_at
                ELSE c.ended_at + make_interval(secs => 10 + x.n % 61) END,
       (ARRAY['ringing', 'on-call', 'wrap-up', 'ready'])[s.i + 1],
       (ARRAY['ready', 'ringing', 'on-call', 'wrap-up'])[s.i + 1], NULL
  FROM calls c
  JOIN ring_attempts r ON r.leg_id = 'l' || substr(c.call_id, 2, 10) || 'b'
  CROSS JOIN LATERAL (
        SELECT substr(c.call_id, 2, 10)::bigint AS n,
               floor(extract(epoch FROM c.arrived_at - $3::timestamptz) / 86400)::int AS day) x
  CROSS JOIN generate_series(0, 3) s(i)
 WHERE c.call_id BETWEEN $1 AND $2 AND c.outcome = 'answered'
RETURNING *)
INSERT INTO call_events (key, call_id, at, kind, data)
SELECT key, NULL, at, 'AgentStateChanged',
       jsonb_build_object('agent_id', agent_id, 'state', state, 'previous', previous,
                          'reason', NULL, 'seconds',
                          10 + ((split_part(key, ':', 2)::bigint - 3) / 4) % 61)
  FROM s WHERE previous = 'wrap-up'
"""

EVENTS = """
INSERT INTO call_events (key, call_id, at, kind, data)
SELECT 'e' || substr(c.call_id, 2, 10), c.call_id, c.ended_at, 'CallEnded',
       jsonb_build_object('call_id', c.call_id, 'queue', c.queue, 'agent_id', c.agent_id,
                          'hung_up_by', c.hung_up_by, 'talk_seconds', c.talk_seconds,
                          'wait_seconds', c.wait_seconds)
  FROM calls c
 WHERE c.call_id BETWEEN $1 AND $2 AND c.outcome = 'answered'
"""

# The agents' records of 80 % of the answered calls: 60 % inquiries, 20 % repairs, 5 %
# complaints, 3 % suggestions, 12 % other; half ask for the caller's satisfaction.
FORMS = """
INSERT INTO call_forms (id, call_id, agent_id, customer_id, caller_name, called_at,
                        service_requested, category, complaint_matter, satisfaction_asked,
                        satisfaction_score, read_back_done, saved_at)
SELECT 'f' || substr(c.call_id, 2, 10), c.call_id, c.agent_id, g.customer,
       'Caller ' || g.n % 1000, c.answered_at, 'Asked about the service, item ' || g.n % 97,
       k.category, CASE WHEN k.category = 'complaint' THEN 'The repair was late' END,
       g.r4 < 0.5, CASE WHEN g.r4 < 0.4 THEN 1 + floor(g.r4 * 12.5)::int END, true,
       c.ended_at + interval '1 minute'
  FROM calls c
  JOIN bench_gen g ON g.n = substr(c.call_id, 2, 10)::bigint
  CROSS JOIN LATERAL (SELECT CASE WHEN g.r2 < 0.6 THEN 'inquiry' WHEN g.r2 < 0.8 THEN 'repair'
                                  WHEN g.r2 < 0.85 THEN 'complaint'
                                  WHEN g.r2 < 0.88 THEN 'suggestion'
                                  ELSE 'other' END AS category) k
 WHERE c.call_id BETWEEN $1 AND $2 AND c.outcome = 'answered' AND g.r4 < 0.8
"""

# Complaints and suggestions from those records: closed in time (90 %) or late, but the
# last two weeks' still open.
CASES = """
INSERT INTO complaints (form_id, customer_id, class, matter, status, deadline_at, received_at,
                        created_at, closed_at, met_at, reported_by)
SELECT f.id, f.customer_id, CASE WHEN f.saved_at::time < '09:00' THEN 'serious'
                                 ELSE 'ordinary' END,
       f.complaint_matter, CASE WHEN f.called_at < $3 THEN 'closed' ELSE 'received' END,
       f.called_at + interval '3 days', f.called_at, f.saved_at,
       CASE WHEN f.called_at < $3 THEN f.called_at + interval '2 days' END,
       CASE WHEN f.called_at < $3 THEN f.called_at + interval '2 days' END, f.agent_id
  FROM call_forms f WHERE f.id BETWEEN $1 AND $2 AND f.category = 'complaint';
INSERT INTO suggestions (form_id, customer_id, text, reported_by, received_at, status, adopted,
                         answered_at)
SELECT f.id, f.customer_id, 'Open on Sundays', f.agent_id, f.called_at,
       CASE WHEN f.called_at < $3 THEN 'answered' ELSE 'recorded' END,
       CASE WHEN f.called_at < $3 THEN f.satisfaction_asked END,
       CASE WHEN f.called_at < $3 THEN f.called_at + interval '5 days' END
  FROM call_forms f WHERE f.id BETWEEN $1 AND $2 AND f.category = 'suggestion'
"""

# Each abandoned caller of a local day is owed a call-back; 70 % are reached on a first
# attempt, the others expire after a failed one.
CALLBACKS = """
INSERT INTO callback_items (kind, number, local_day, queue, call_id, owed_since, last_abandon_at,
                            status, attempts, max_attempts, closed_at, closed_as, made_at,
                            updated_at)
SELECT 'abandoned', c.caller_e164, c.arrived_at::date, c.queue, c.call_id, c.ended_at,
       c.ended_at, CASE WHEN hashtext(c.call_id) % 10 < 7
                        THEN 'closed' ELSE 'expired' END, 1, 3,
       c.ended_at + interval '1 hour',
       CASE WHEN hashtext(c.call_id) % 10 < 7 THEN 'reached' ELSE 'expired' END,
       c.ended_at, c.ended_at + interval '1 hour'
  FROM calls c
 WHERE c.call_id BETWEEN $1 AND $2 AND c.outcome = 'abandoned'
ON CONFLICT DO NOTHING;
INSERT INTO callback_attempts (item_id, at, actor, outcome, call_id)
SELECT i.id, i.closed_at, 'a001',
       CASE WHEN i.status = 'closed' THEN 'reached' ELSE 'no-answer' END, NULL
  FROM callback_items i WHERE i.call_id BETWEEN $1 AND $2
"""

CUSTOMERS = """
INSERT INTO customers (id, name, address, vip, notes)
SELECT i, 'Customer ' || i, i % 500 || ' Renmin Road, Block ' || i % 37, i % 50 = 0,
       CASE WHEN i % 10 = 0 THEN 'Prefers a call back in the afternoon' END
  FROM generate_series(1, $1::bigint) i;
INSERT INTO customer_numbers (number, customer_id)
SELECT '+86138' || lpad(i::text, 8, '0'), i FROM generate_series(1, $1::bigint) i
UNION ALL
SELECT '+86150' || lpad(i::text, 8, '0'), i FROM generate_series(1, $1::bigint) i
 WHERE i % 3 = 0;
SELECT setval('customers_id_seq', $1::bigint)
"""

# A pause of an hour a day per agent (not-ready, then ready), in the process of the day.
PAUSES = """
INSERT INTO agent_state_history (key, agent_id, at, state, previous, reason)
SELECT 'b' || lpad(d::text, 4, '0') || ':' || (90000000000 + a * 2 + s),
       'a' || lpad(a::text, 3, '0'),
       $1::timestamptz + d * interval '1 day' + interval '12 hours' + s * interval '1 hour',
       CASE s WHEN 0 THEN 'not-ready' ELSE 'ready' END,
       CASE s WHEN 0 THEN 'ready' ELSE 'not-ready' END, CASE s WHEN 0 THEN 'lunch' END
  FROM generate_series(0, $2::int) d, generate_series(1, $3::int) a, generate_series(0, 1) s
 WHERE $1::timestamptz + d * interval '1 day' + interval '12 hours' + s * interval '1 hour'
       < $4::timestamptz
"""


@dataclass
class Scale:
    calls: int
    customers: int
    days: int
    today: int
    agents: int


def call_key(n: int) -> str:
    return f"c{n:010d}@pbx"


async def secondary_indexes(conn: asyncpg.Connection) -> list[tuple[str, str]]:
    """The big tables' indexes that back no constraint: (name, definition)."""
    rows = await conn.fetch(
        """SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
             FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
            WHERE t.relname = ANY($1::text[]) AND NOT i.indisprimary AND NOT i.indisunique""",
        list(TABLES),
    )
    return [(r["name"], r["def"]) for r in rows]


async def generate(conn: asyncpg.Connection, scale: Scale, zone: str, now: datetime) -> None:
    """The whole history, chunk by chunk, with progress on stdout."""
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
    first = today - timedelta(days=scale.days)
    await conn.execute(f"SET TIME ZONE '{zone}'")
    await conn.execute("SET maintenance_work_mem = '512MB'")
    await conn.execute("SET synchronous_commit = off")
    indexes = await secondary_indexes(conn)
    for name, _ in indexes:
        await conn.execute(f"DROP INDEX {name}")
    await conn.execute(
        """CREATE UNLOGGED TABLE bench_gen (n bigint PRIMARY KEY, arrived timestamptz,
             r1 float8, r2 float8, r3 float8, r4 float8, agent int, customer bigint,
             stranger bigint)"""
    )
    await timed("customers", conn.execute, CUSTOMERS.replace("$1", str(scale.customers)))
    await conn.execute(
        "INSERT INTO agents (id, name, number, extension) SELECT 'a' || lpad(i::text, 3, '0'),"
        " 'Agent ' || i, lpad(i::text, 4, '0'), (300000 + i)::text"
        " FROM generate_series(1, $1::int) i",
        scale.agents,
    )
    total = scale.calls + scale.today
    spans = [(1, scale.calls, first, scale.days), (scale.calls + 1, total, today, 0)]
    for low, high, start, span in spans:
        for lo in range(low, high + 1, CHUNK):
            hi = min(high, lo + CHUNK - 1)
            t0 = time.perf_counter()
            # Today's calls arrive between its midnight and `now`.
            if span == 0:
                await conn.execute(
                    "INSERT INTO bench_gen SELECT n, $3::timestamptz + random() * ($4 - $3),"
                    " random(), random(), random(), random(), 1 + floor(random() * $6)::int,"
                    " CASE WHEN random() < 0.8 THEN 1 + floor(random() * $5)::bigint END,"
                    " floor(random() * 100000000)::bigint"
                    " FROM generate_series($1::bigint, $2::bigint) n",
                    lo, hi, start, now, scale.customers, scale.agents,
                )  # fmt: skip
            else:
                await conn.execute(
                    GEN, lo, hi, start, span, scale.customers, low, scale.agents, high
                )
            a, b = call_key(lo), call_key(hi)
            await conn.execute(CALLS, lo, hi)
            await conn.execute(RING_ATTEMPTS, a, b, scale.agents)
            await conn.execute(STATES, a, b, first)
            await conn.execute(EVENTS, a, b)
            await conn.execute(FORMS, a, b)
            await conn.execute(
                CASES.replace("$1", lit(f"f{lo:010d}"))
                .replace("$2", lit(f"f{hi:010d}"))
                .replace("$3", lit((today - timedelta(14)).isoformat()))
            )
            await conn.execute(CALLBACKS.replace("$1", lit(a)).replace("$2", lit(b)))
            await conn.execute("TRUNCATE bench_gen")
            print(f"[gen] calls {lo:,}-{hi:,}: {time.perf_counter() - t0:.1f} s", flush=True)
    await timed("pauses", conn.execute, PAUSES, first, scale.days, scale.agents, now)
    await conn.execute("DROP TABLE bench_gen")
    for name, definition in indexes:
        await timed(f"index {name}", conn.execute, definition)
    await timed("vacuum analyze", conn.execute, "VACUUM (ANALYZE)")


def lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def timed(what: str, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    t0 = time.perf_counter()
    out = await fn(*args)
    print(f"[gen] {what}: {time.perf_counter() - t0:.1f} s", flush=True)
    return out


# -- the measurements -------------------------------------------------------------------------


async def stand_in(
    conn: asyncpg.Connection, period: Period, now: datetime, agents: list[str]
) -> dict[str, float]:
    """The report's SQL until `records.reports.gather` is there: the functions and
    statements it is built on, each timed (seconds)."""
    start, end, zone = period.start, period.end, period.zone
    parts: dict[str, float] = {}

    async def part(name: str, fn: Callable[[], Awaitable[Any]]) -> None:
        t0 = time.perf_counter()
        await fn()
        parts[name] = time.perf_counter() - t0

    await part("queue_stats", lambda: queue_stats(conn, start, end))
    await part("queues by local day and hour", lambda: conn.fetch(BY_DAY_HOUR, start, end, zone))

    await part("agents' state seconds (state_seconds)",
               lambda: state_seconds(conn, start, end, agents))  # fmt: skip
    await part("agents' talk and records", lambda: conn.fetch(AGENT_TALK, start, end, agents))
    await part("agents' wrap-up (wrap_ups)", lambda: wrap_ups(conn, start, end, agents))
    await part("complaints.monthly", lambda: complaints.monthly(conn, start, end, now))
    first, end_day, tz = period.first, period.end_day, period.tz
    await part("callbacks.monthly", lambda: callbacks.monthly(conn, first, end_day, tz))
    before = period.previous()
    await part("records by category",
               lambda: conn.fetch(CATEGORIES, before.start, start, end))  # fmt: skip
    return parts


# queue_stats' counts per queue, local day and hour (the report's day and hour tables).
BY_DAY_HOUR = """
SELECT queue, (arrived_at AT TIME ZONE $3)::date AS day,
       extract(hour FROM arrived_at AT TIME ZONE $3)::int AS hour,
       count(*) FILTER (WHERE outcome IS NULL OR outcome NOT IN ('closed', 'no-agent')) AS offered,
       count(*) FILTER (WHERE answered_at IS NOT NULL) AS answered,
       count(*) FILTER (WHERE outcome IN ('abandoned', 'short-abandon')) AS abandoned,
       count(*) FILTER (WHERE outcome = 'short-abandon') AS short_abandons,
       count(*) FILTER (WHERE within_target) AS within_target,
       sum(wait_seconds) FILTER (WHERE answered_at IS NOT NULL) AS answer_seconds,
       max(wait_seconds) AS longest_wait
  FROM calls
 WHERE arrived_at >= $1 AND arrived_at < $2 AND outcome IS DISTINCT FROM 'rejected'
 GROUP BY 1, 2, 3
"""

# Per agent of $3, the talk of the answered offers ended in the period as `agent_day`
# reads it (kept on the offer's row by the records writer), and whether their record is
# saved; through the (agent_id, time) indexes, as `agent_stats` reads.
AGENT_TALK = """
SELECT r.agent_id, count(*) FILTER (WHERE r.outcome = 'answered') AS handled,
       count(r.talk_seconds) AS finished, coalesce(sum(r.talk_seconds), 0) AS talk,
       count(*) FILTER (WHERE r.outcome = 'answered' AND NOT EXISTS (
           SELECT 1 FROM call_forms f WHERE f.call_id = r.call_id AND f.agent_id = r.agent_id))
         AS records_missing
  FROM ring_attempts r
 WHERE r.agent_id = ANY($3::text[])
   AND r.offered_at >= $1::timestamptz - interval '1 hour' AND r.offered_at < $2
   AND r.ended_at >= $1 AND r.ended_at < $2
 GROUP BY r.agent_id
"""

# The agents' records by category, this period and the one before.
CATEGORIES = """
SELECT category, count(*) FILTER (WHERE called_at >= $2) AS count,
       count(*) FILTER (WHERE called_at < $2) AS previous
  FROM call_forms WHERE called_at >= $1 AND called_at < $3 GROUP BY category
"""


@dataclass
class Timing:
    name: str
    target: float  # seconds
    runs: list[float]
    parts: dict[str, float]
    note: str = ""


async def report(
    conn: asyncpg.Connection, period: Period, now: datetime, agents: list[str]
) -> dict[str, float]:
    if gather is not None:
        await gather(conn, period, now)
        return {}
    return await stand_in(conn, period, now, agents)


async def measure_report(
    conn: asyncpg.Connection,
    name: str,
    period: Period,
    now: datetime,
    target: float,
    repeat: int,
    agents: list[str],
    parts: bool = False,
) -> Timing:
    """`repeat` runs of the report; with `parts` (or without `gather`) the parts of the
    SQL it is built on, each timed, once more after them."""
    runs: list[float] = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        got = await report(conn, period, now, agents)
        runs.append(time.perf_counter() - t0)
        print(f"[measure] {name} ({period.label}): {runs[-1]:.2f} s", flush=True)
    if parts and gather is not None:
        got = await stand_in(conn, period, now, agents)
    print(f"[measure] {name}'s parts: " + " ".join(f"{k}={v:.2f}" for k, v in got.items()))
    return Timing(name, target, runs, got)


async def measure_lookup(dsn: str, numbers: list[str], repeat: int) -> list[float]:
    """The screen pop's lookups, one after the other, each of a number not in the cache:
    seconds each."""
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=5, reset=reset_connection)
    try:
        directory = CustomerDirectory(pool)
        await directory.lookup("+8613000000000")  # connect and prepare outside the count
        out = []
        for number in numbers * repeat:
            directory.forget(number)
            t0 = time.perf_counter()
            await directory.lookup(number)
            out.append(time.perf_counter() - t0)
        return out
    finally:
        await pool.close()


async def measure_today(
    conn: asyncpg.Connection, today: datetime, now: datetime, agents: list[str], repeat: int
) -> Timing:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        await queue_stats(conn, today, now)
        await agent_stats(conn, today, now, agents)
        runs.append(time.perf_counter() - t0)
        print(f"[measure] today at start-up: {runs[-1]:.3f} s", flush=True)
    return Timing("board's today at start-up", 1.0, runs, {})


async def sizes(conn: asyncpg.Connection) -> tuple[int, list[tuple[str, int, int]]]:
    total = await conn.fetchval("SELECT pg_database_size(current_database())")
    rows = await conn.fetch(
        """SELECT c.relname AS name, pg_table_size(c.oid) AS heap,
                  pg_indexes_size(c.oid) AS idx
             FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
            WHERE c.relkind = 'r' AND s.nspname = 'public'
            ORDER BY pg_total_relation_size(c.oid) DESC LIMIT 12"""
    )
    return total, [(r["name"], r["heap"], r["idx"]) for r in rows]


@dataclass
class Result:
    generation: float
    summary: float  # seconds to sum the agents' state hours of the whole history
    summary_hours: int
    counts: dict[str, int]
    timings: list[Timing]
    lookups: list[float]
    size: int
    tables: list[tuple[str, int, int]]


async def run(
    dsn: str, scale: Scale, zone: str, now: datetime, repeat: int, reuse: bool, parts: bool = False
) -> Result:
    conn = await asyncpg.connect(dsn, command_timeout=7200)
    try:
        t0 = time.perf_counter()
        if reuse:  # generated by an earlier run: migrations added since apply to it
            for applied in await apply_migrations(conn):
                print(f"[gen] migration {applied.version} {applied.name}:"
                      f" {time.perf_counter() - t0:.1f} s", flush=True)  # fmt: skip
            # As autovacuum does soon after a migration's updates.
            await conn.execute("VACUUM ANALYZE")
        else:
            await apply_migrations(conn)
            await generate(conn, scale, zone, now)
        generation = time.perf_counter() - t0
        counts = {
            t: await conn.fetchval(f"SELECT count(*) FROM {t}")
            for t in (*TABLES, "customers", "customer_numbers", "complaints", "callback_items")
        }
        print(f"[gen] {generation:.0f} s: {counts}", flush=True)
        # The agents' state hours, as the supervisor desk sums them at its first start
        # on this history (and keeps them up to date after).
        t0 = time.perf_counter()
        summary_hours = await refresh(conn)
        summary = time.perf_counter() - t0
        print(f"[gen] state hours: {summary_hours} in {summary:.1f} s", flush=True)
        tz = ZoneInfo(zone)
        local = now.astimezone(tz)
        last = date(local.year, local.month, 1) - timedelta(days=1)
        the_month = month(last.year, last.month, zone)
        year_first = date(last.year - 1, last.month, 1) + timedelta(days=31)
        the_year = days(year_first.replace(day=1), last, zone)
        agents = [f"a{i:03d}" for i in range(1, scale.agents + 1)]
        timings = [
            await measure_report(
                conn, "a month's report", the_month, now, 10.0, repeat, agents, parts
            ),
            await measure_report(
                conn, "a year's report", the_year, now, 60.0, repeat, agents, parts
            ),
        ]
        today = local.replace(hour=0, minute=0, second=0, microsecond=0)
        timings.append(await measure_today(conn, today, now, agents, repeat))
        rng = random.Random(21)
        numbers = [f"+86138{rng.randint(1, scale.customers):08d}" for _ in range(1000)]
        lookups = await measure_lookup(dsn, numbers, repeat)
        size, tables = await sizes(conn)
        return Result(
            generation, summary, summary_hours, counts, timings, lookups, size, tables
        )
    finally:
        await conn.close()
