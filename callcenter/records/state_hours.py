"""The agents' seconds paused and idle and their wrap-ups in a span, and their
summary per hour.

One definition (`_INTERVALS`): each state change opens an interval that the
agent's next change of the same process closes (a change's process is the first
part of its key, its order in it the number after the last colon). A process that
stopped wrote no change for it (its agents went offline with it), so an agent's
last change of a process is closed at that process's last change of any agent:
the best trace of when it stopped. A span's seconds are the intervals' overlap
with it; in a span not over, the running process's open states are counted until
its last change.

A wrap-up (`wrap_ups`) counts when it ended, with the seconds its change out of
wrap-up says (`AgentStateChanged.seconds`, in its event).

A month holds millions of changes and a year tens of millions, so the seconds of
every hour that is over are kept in ``agent_state_hours`` (`refresh`, run by the
supervisor desk every few minutes), each interval taken whole and split over the
hours it covers, each wrap-up in the hour it ended. A span's figures
(`state_seconds`, `wrap_ups`) are the summary's whole hours plus what lies outside
them (the hours not summarized yet, the parts of an hour at the span's ends)
computed from the changes. The overlap with a span is additive,
so both give the same seconds (tests/records/test_state_hours.py).

An hour is over once a change at or after its end is written: an interval open
across it closes no earlier (the records come in order). A change written later
than that (a journal replayed out of order, a clock set back) is found by its
``written_at`` and its summary made again from the agent's change before it (an
interval it splits, or a process's end it moves, starts no earlier).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

__all__ = [
    "SUMMARY_LOCK", "StateSeconds", "refresh", "state_seconds", "summarized_to", "wrap_ups",
]

#: The advisory lock one refresh at a time holds (`pg_try_advisory_xact_lock`).
SUMMARY_LOCK = 0x63635F7368  # "cc_sh"

# A writer's transaction that began this long before a look may commit after it:
# the changes written since the look's time less this are read, and of those the
# ones its snapshot did not see are new.
_OVERLAP = timedelta(hours=1)

#: Per agent of $3, their intervals (state, lo, hi) within [$1, $2), from their
#: changes: the last before $1, every one in [$1, $2) and the first at or after $2
#: (which closes a state open across $2 and tells that the process went on; it adds
#: no interval itself). Read one agent at a time through the (agent_id, at) index,
#: so that each agent's changes come in order (bench/records_scale.py).
_INTERVALS = """
h AS (
    SELECT a.id AS agent_id, x.at, x.state, x.boot, x.next_at, x.next_boot
      FROM (SELECT DISTINCT unnest($3::text[])) AS a(id)
      CROSS JOIN LATERAL (
        SELECT at, state, boot, lead(at) OVER w AS next_at, lead(boot) OVER w AS next_boot
          FROM (SELECT at, state,
                       CASE WHEN strpos(key, ':') > 0
                            THEN left(key, length(key) - strpos(reverse(key), ':')) ELSE '' END
                         COLLATE "C" AS boot,
                       CASE WHEN strpos(key, ':') > 0
                            THEN right(key, strpos(reverse(key), ':') - 1) ELSE key END AS seq
                  FROM (SELECT at, state, key FROM (
                          SELECT at, state, key FROM agent_state_history
                           WHERE agent_id = a.id AND at < $1 ORDER BY at DESC LIMIT 1) AS last
                        UNION ALL
                        SELECT at, state, key FROM agent_state_history
                         WHERE agent_id = a.id AND at >= $1 AND at < $2
                        UNION ALL
                        SELECT at, state, key FROM (
                          SELECT at, state, key FROM agent_state_history
                           WHERE agent_id = a.id AND at >= $2 ORDER BY at LIMIT 1) AS after) AS k
               ) AS r
        WINDOW w AS (ORDER BY at, boot, coalesce(nullif(seq, ''), '0')::bigint)) AS x
), ends AS (SELECT boot, max(at) AS boot_end FROM h GROUP BY boot),
intervals AS (
    SELECT h.agent_id, h.state, greatest(h.at, $1) AS lo,
           least(CASE WHEN h.next_boot = h.boot THEN h.next_at ELSE ends.boot_end END, $2) AS hi
      FROM h JOIN ends ON ends.boot = h.boot
)"""

# Per agent with a change read, the seconds of [$1, $2).
_SPAN = f"""
WITH {_INTERVALS}
SELECT agent_id,
       coalesce(sum(extract(epoch FROM hi - lo))
                FILTER (WHERE state = 'not-ready' AND hi > lo), 0)::float8 AS pause,
       coalesce(sum(extract(epoch FROM hi - lo))
                FILTER (WHERE state = 'ready' AND hi > lo), 0)::float8 AS idle
  FROM intervals
 GROUP BY agent_id"""

#: The changes out of wrap-up in [$1, $2) of the agents of $3, with their events
#: (SQL FROM clause): each says the seconds spent in wrap-up (`AgentStateChanged.
#: seconds`, as `callcenter_wrap_up_seconds`), counted at the change's time.
_WRAP_UPS = """agent_state_history h JOIN call_events e ON e.key = h.key
 WHERE h.agent_id = ANY($3::text[]) AND h.previous = 'wrap-up' AND h.at >= $1 AND h.at < $2"""
_WRAP_UPS_FIGURES = "coalesce(sum((e.data->>'seconds')::float8), 0) AS seconds, count(*) AS n"

# Per agent, their wrap-ups of [$1, $2).
_WRAP_SPAN = f"SELECT h.agent_id, {_WRAP_UPS_FIGURES} FROM {_WRAP_UPS} GROUP BY h.agent_id"

# The summary of the hours of [$1, $2) (whole UTC hours): each interval split over
# the hours it covers, each wrap-up in the hour of its end.
_SUMMARIZE = f"""
WITH {_INTERVALS}, pieces AS (
    SELECT i.agent_id, i.state, g.hour,
           extract(epoch FROM least(i.hi, g.hour + interval '1 hour')
                              - greatest(i.lo, g.hour)) AS seconds
      FROM intervals i
     CROSS JOIN LATERAL generate_series(date_trunc('hour', i.lo, 'UTC'),
                                        i.hi - interval '1 microsecond',
                                        interval '1 hour') AS g(hour)
     WHERE i.hi > i.lo AND i.state IN ('not-ready', 'ready')
), states AS (
    SELECT hour, agent_id,
           coalesce(sum(seconds) FILTER (WHERE state = 'not-ready'), 0) AS pause,
           coalesce(sum(seconds) FILTER (WHERE state = 'ready'), 0) AS idle
      FROM pieces GROUP BY hour, agent_id
), wraps AS (
    SELECT date_trunc('hour', h.at, 'UTC') AS hour, h.agent_id, {_WRAP_UPS_FIGURES}
      FROM {_WRAP_UPS} GROUP BY 1, 2
)
INSERT INTO agent_state_hours (hour, agent_id, pause_seconds, idle_seconds,
                               wrap_up_seconds, wrap_ups)
SELECT hour, agent_id, coalesce(s.pause, 0), coalesce(s.idle, 0),
       coalesce(w.seconds, 0), coalesce(w.n, 0)
  FROM states s FULL JOIN wraps w USING (hour, agent_id)"""

# Every agent with a change: one probe of the (agent_id, at) index per agent.
_AGENTS = """
WITH RECURSIVE a(id) AS (
    (SELECT agent_id FROM agent_state_history ORDER BY agent_id LIMIT 1)
    UNION ALL
    SELECT (SELECT agent_id FROM agent_state_history WHERE agent_id > a.id
             ORDER BY agent_id LIMIT 1)
      FROM a WHERE a.id IS NOT NULL
)
SELECT id FROM a WHERE id IS NOT NULL"""

# The first and the last change of any agent of $1, and the time.
_BOUNDS = """
SELECT min(f.at) AS first, max(l.at) AS last, now() AS now
  FROM unnest($1::text[]) AS a(id)
  CROSS JOIN LATERAL (SELECT at FROM agent_state_history WHERE agent_id = a.id
                       ORDER BY at LIMIT 1) f
  CROSS JOIN LATERAL (SELECT at FROM agent_state_history WHERE agent_id = a.id
                       ORDER BY at DESC LIMIT 1) l"""

# Of the changes new since the last look (written since its time less $1 and not
# seen by its snapshot: a row's xmin made a full transaction id from its age) with a
# time before the summary's end, the earliest time from which the summary no longer
# holds: the agent's change before each (the interval it splits, the process's end
# it may move), or its own.
_LATE = """
SELECT min(coalesce(p.at, x.at))
  FROM agent_state_hours_done d
  JOIN agent_state_history x ON x.written_at >= d.checked_at - $1::interval AND x.at < d.upto
  LEFT JOIN LATERAL (SELECT at FROM agent_state_history p
                      WHERE p.agent_id = x.agent_id AND p.at < x.at
                      ORDER BY at DESC LIMIT 1) p ON true
 WHERE NOT pg_visible_in_snapshot(
           (pg_current_xact_id()::text::bigint - age(x.xmin))::text::xid8, d.checked_snapshot)"""


@dataclass(frozen=True, slots=True)
class StateSeconds:
    agent_id: str
    pause_seconds: float  # in not-ready
    idle_seconds: float  # in ready


def _hour_floor(t: datetime) -> datetime:
    """The start of `t`'s hour in UTC (a zone's hour may start at half past)."""
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _hour_ceil(t: datetime) -> datetime:
    floor = _hour_floor(t)
    return floor if floor == t.astimezone(UTC) else floor + timedelta(hours=1)


async def summarized_to(conn: asyncpg.Connection) -> datetime | None:
    """The end of the summary: every hour before it is summarized (None: none is)."""
    value: datetime | None = await conn.fetchval("SELECT upto FROM agent_state_hours_done")
    return value


async def refresh(conn: asyncpg.Connection, *, chunk: timedelta = timedelta(days=1)) -> int:
    """Bring the summary up to the last hour that is over; returns the hours summarized.

    First the changes written since the last refresh with a time inside the summary
    undo it from there. Then the hours are summarized a `chunk` at a time, each in a
    transaction of its own (a first run on years of history commits as it goes). One
    refresh at a time: another finding the lock taken returns 0."""
    done = 0
    first = True
    while True:
        # One snapshot for every statement: the changes summed, those looked at for
        # being late and the snapshot kept for the next look are the same.
        async with conn.transaction(isolation="repeatable_read"):
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", SUMMARY_LOCK):
                return done
            upto = await summarized_to(conn)
            if first:
                first = False
                if upto is not None:
                    # This transaction's id first: `age` counts from it.
                    await conn.execute("SELECT pg_current_xact_id()")
                    late = await conn.fetchval(_LATE, _OVERLAP)
                    if late is not None:
                        upto = min(upto, _hour_floor(late))
                        await conn.execute("DELETE FROM agent_state_hours WHERE hour >= $1", upto)
                await conn.execute(
                    "UPDATE agent_state_hours_done"
                    " SET checked_at = now(), checked_snapshot = pg_current_snapshot()"
                )
            agents = [r["id"] for r in await conn.fetch(_AGENTS)]
            bounds = await conn.fetchrow(_BOUNDS, agents)
            if bounds["last"] is None:
                return done
            # The hours before the last change's, and never past the database's time
            # (a change stamped in the future by a clock gone wrong).
            target = _hour_floor(min(bounds["last"], bounds["now"]))
            start = upto if upto is not None else _hour_floor(bounds["first"])
            if start < target:
                end = min(start + chunk, target)
                await conn.execute("DELETE FROM agent_state_hours WHERE hour >= $1", start)
                await conn.execute(_SUMMARIZE, start, end, agents)
                done += int((end - start) / timedelta(hours=1))
                start = end
            await conn.execute(
                """INSERT INTO agent_state_hours_done (upto, checked_at, checked_snapshot)
                   VALUES ($1, now(), pg_current_snapshot())
                   ON CONFLICT (only_row) DO UPDATE SET upto = $1""",
                start,
            )
            if start >= target:
                return done


Figures = tuple[float, ...]
Part = Callable[[datetime, datetime], Awaitable[dict[str, Figures]]]


async def _by_parts(
    conn: asyncpg.Connection, start: datetime, end: datetime, raw: Part, summed: str,
    agents: list[str],
) -> dict[str, Figures]:
    """Per agent with any, figures that add up over time: the summary's whole hours
    inside [start, end) (`summed`: SQL over ``agent_state_hours`` of [$1, $2), per
    agent), and `raw` of the rest. In one snapshot: the summary's end and its hours
    as one refresh left them."""
    if not conn.is_in_transaction():
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await _by_parts(conn, start, end, raw, summed, agents)
    # A plan for these times: the generic plan PostgreSQL settles on for a statement
    # run often (here first for months, then a year) read a year's summary in 17 s
    # instead of 0.3 (bench/records_scale.py).
    await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
    upto = await summarized_to(conn)
    lo, hi = _hour_ceil(start), _hour_floor(end)
    if upto is not None:
        hi = min(hi, upto)
    if upto is None or hi <= lo:
        parts = [await raw(start, end) if start < end else {}]
    else:
        rows = await conn.fetch(summed, lo, hi, agents)
        parts = [
            await raw(start, lo) if start < lo else {},
            {r[0]: tuple(r[1:]) for r in rows},
            await raw(hi, end) if hi < end else {},
        ]
    totals: dict[str, Figures] = {}
    for part in parts:
        for agent, figures in part.items():
            before = totals.get(agent)
            if before is not None:
                figures = tuple(a + b for a, b in zip(before, figures, strict=True))
            totals[agent] = figures
    # Agents with nothing in the span are not listed, whichever way it was read (the
    # changes list every agent with a change before it).
    return {agent: figures for agent, figures in totals.items() if any(figures)}


async def state_seconds(
    conn: asyncpg.Connection, start: datetime, end: datetime, agents: list[str]
) -> list[StateSeconds]:
    """Per agent of `agents` with any in [start, end): seconds paused and idle. The
    summary's whole hours inside the span, the rest from the changes (the module's
    docstring). A stopped process's end is read from every agent's changes, as the
    summary reads it, whoever is asked for."""
    wanted = set(agents)
    floor: list[str] = []

    async def raw(a: datetime, b: datetime) -> dict[str, Figures]:
        if not floor:
            floor.extend(r["id"] for r in await conn.fetch(_AGENTS))
        rows = await conn.fetch(_SPAN, a, b, floor)
        return {r["agent_id"]: (r["pause"], r["idle"]) for r in rows if r["agent_id"] in wanted}

    summed = """SELECT agent_id, sum(pause_seconds), sum(idle_seconds) FROM agent_state_hours
                 WHERE hour >= $1 AND hour < $2 AND agent_id = ANY($3::text[])
                 GROUP BY agent_id"""
    found = await _by_parts(conn, start, end, raw, summed, agents)
    return [StateSeconds(a, p, i) for a, (p, i) in sorted(found.items())]


async def wrap_ups(
    conn: asyncpg.Connection, start: datetime, end: datetime, agents: list[str]
) -> dict[str, tuple[float, int]]:
    """Per agent of `agents` with any in [start, end): the seconds spent in wrap-up
    and how many times, counted when the wrap-up ended (`_WRAP_UPS`)."""

    async def raw(a: datetime, b: datetime) -> dict[str, Figures]:
        return {r[0]: (r[1], r[2]) for r in await conn.fetch(_WRAP_SPAN, a, b, agents)}

    summed = """SELECT agent_id, sum(wrap_up_seconds), sum(wrap_ups) FROM agent_state_hours
                 WHERE hour >= $1 AND hour < $2 AND agent_id = ANY($3::text[])
                   AND wrap_ups > 0
                 GROUP BY agent_id"""
    found = await _by_parts(conn, start, end, raw, summed, agents)
    return {a: (float(w), int(n)) for a, (w, n) in sorted(found.items()) if n}
