"""The supervisor's figures for a period, from the records (they survive restarts).

Per queue (`queue_stats`) and per agent (`agent_stats`: calls handled and
missed, seconds paused and idle).

Definitions, as in docs/metrics.md: service level = answered within the ring
target / (offered − short abandons); abandonment rate = (abandoned − short
abandons) / (offered − short abandons); ASA = mean answer time of answered
calls. Transferred calls count once, with their first answer; a call counts
in the queue it was first queued in. The counters and the board count the
same way (`acd.kpi.KpiFold`; tests/records/test_kpi.py checks they agree).
A call a crash interrupted (outcome ``interrupted``) is offered, answered if
its answer came before the crash, and never abandoned; its ring attempt
still ringing is neither handled nor missed. A call that failed (outcomes
``pbx-timeout``, ``elsewhere``, ``refused``: `acd.events.CallFailed`) is
offered and neither answered nor abandoned.

One agent's own day (`agent_day`, the desktop's "My day"): the offers of the
day with their outcomes and whether the agent's record of each call is
saved, and handled, missed (counted as `agent_stats` counts them, with the
same SQL) and the average handle time: (talk + wrap-up) / calls finished.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from callcenter.reports.model import AgentFigures, QueueFigures

from .forms import RECORD_SAVED
from .state_hours import state_seconds, wrap_ups

__all__ = [
    "CALLS_IN_PERIOD",
    "QUEUE_FIGURES",
    "AgentDay",
    "AgentStats",
    "DayOffer",
    "QueueFigures",
    "agent_day",
    "agent_figures",
    "agent_stats",
    "queue_figures",
    "queue_stats",
]


def _ended_in(r: str = "") -> str:
    """SQL: ring attempt `r` ended (was answered, missed, declined ...) in [$1, $2). An
    offer ends within the hour it was made (the agent's ring limit), which keeps the
    read on the (agent_id, offered_at) index."""
    return (
        f"{r}offered_at >= $1::timestamptz - interval '1 hour' AND {r}offered_at < $2"
        f" AND {r}ended_at >= $1 AND {r}ended_at < $2"
    )


#: An agent's handled and missed offers, counted over ring attempts (SQL): the board's
#: and the agent's own day's one definition. Missed is ring-no-answer only: a declined,
#: busy or unreachable phone, a caller who hung up while it rang and a call answered
#: elsewhere are not.
_HANDLED = "count(*) FILTER (WHERE outcome = 'answered')"
_MISSED = "count(*) FILTER (WHERE outcome = 'missed')"


#: The figures of a set of calls (SQL select list over ``calls``, to be grouped): the
#: board's "today" (`queue_stats`) and the reports (`records.reports`) read them alike,
#: into `reports.model.QueueFigures`, which derives the rates. A call turned away at
#: arrival (closed, no-agent) is not offered; an abandon is within the target when the
#: ring target had not passed (no `TargetBreached` for the call, as `acd.kpi` counts it).
QUEUE_FIGURES = """
        count(*) FILTER (WHERE outcome IS NULL OR outcome NOT IN ('closed', 'no-agent'))
          AS offered,
        count(*) FILTER (WHERE answered_at IS NOT NULL) AS answered,
        count(*) FILTER (WHERE within_target) AS answered_within_target,
        count(*) FILTER (WHERE outcome IN ('abandoned', 'short-abandon')) AS abandoned,
        count(*) FILTER (WHERE outcome = 'short-abandon') AS short_abandons,
        count(*) FILTER (WHERE outcome IN ('abandoned', 'short-abandon') AND NOT breached)
          AS abandoned_within_target,
        count(*) FILTER (WHERE outcome IN ('pbx-timeout', 'elsewhere', 'refused')) AS failed,
        count(*) FILTER (WHERE outcome = 'overflow') AS overflowed,
        count(*) FILTER (WHERE outcome = 'interrupted') AS interrupted,
        count(*) FILTER (WHERE outcome = 'closed') AS closed,
        count(*) FILTER (WHERE outcome = 'no-agent') AS no_agent,
        coalesce(sum(wait_seconds) FILTER (WHERE answered_at IS NOT NULL), 0) AS answer_seconds,
        max(wait_seconds) AS longest_wait_seconds"""

#: The calls that count (SQL condition): arrived in [$1, $2), not rejected (a call to a
#: number no queue takes is no queue's).
CALLS_IN_PERIOD = "arrived_at >= $1 AND arrived_at < $2 AND outcome IS DISTINCT FROM 'rejected'"


def queue_figures(queue: str, row: Mapping[str, Any]) -> QueueFigures:
    """One row of `QUEUE_FIGURES` as the figures of `queue`."""
    return QueueFigures(
        queue,
        row["offered"],
        row["answered"],
        row["answered_within_target"],
        row["abandoned"],
        row["short_abandons"],
        row["abandoned_within_target"],
        row["failed"],
        row["overflowed"],
        row["interrupted"],
        row["closed"],
        row["no_agent"],
        float(row["answer_seconds"]),
        None if row["longest_wait_seconds"] is None else float(row["longest_wait_seconds"]),
    )


async def queue_stats(
    conn: asyncpg.Connection, start: datetime, end: datetime
) -> list[QueueFigures]:
    """Per queue, for calls that arrived in [start, end)."""
    rows = await conn.fetch(
        f"SELECT queue, {QUEUE_FIGURES} FROM calls WHERE {CALLS_IN_PERIOD}"
        " GROUP BY queue ORDER BY queue",
        start,
        end,
    )
    return [queue_figures(r["queue"], r) for r in rows]


@dataclass(frozen=True, slots=True)
class AgentStats:
    """One agent's day so far: answers, ring-no-answers, seconds paused and idle."""

    agent_id: str
    handled: int  # calls answered (an answer after a transfer counts for its agent)
    missed: int  # offers let ring past agent_ring_limit
    pause_seconds: float  # in not-ready
    idle_seconds: float  # in ready


async def agent_stats(
    conn: asyncpg.Connection, start: datetime, end: datetime, agent_ids: list[str]
) -> list[AgentStats]:
    """Per agent of `agent_ids`, for [start, end): the board's history (`end` when
    this process started: every earlier process has stopped) and a report's period
    (a state open at `end` counted until `end` when the agent changed state after it
    in the same process; in a period not over, the running process's open states
    are counted until its last change: `state_hours`). Reads through the
    (agent_id, time) indexes and the hours' summary, so the cost grows with the
    span's hours, not the table. A stopped process's end is read from every
    agent's changes."""
    attempts = await conn.fetch(
        f"""SELECT agent_id, {_HANDLED} AS handled, {_MISSED} AS missed
              FROM ring_attempts
             WHERE agent_id = ANY($3::text[]) AND {_ended_in()}
             GROUP BY agent_id""",
        start,
        end,
        agent_ids,
    )
    durations = {
        s.agent_id: (s.pause_seconds, s.idle_seconds)
        for s in await state_seconds(conn, start, end, agent_ids)
    }
    counts = {r["agent_id"]: (r["handled"], r["missed"]) for r in attempts}
    return [
        AgentStats(agent, *counts.get(agent, (0, 0)), *durations.get(agent, (0.0, 0.0)))
        for agent in sorted(set(counts) | set(durations))
    ]


@dataclass(frozen=True, slots=True)
class DayOffer:
    """One offer of a call to the agent, as their day lists it."""

    call_id: str
    queue: str
    caller: str
    customer_name: str | None  # the customer the caller's number is filed under
    offered_at: datetime
    # The offer's outcome: answered, missed, declined, busy, unreachable, cancelled
    # (the caller hung up while it rang), answered-elsewhere, refused (by the PBX),
    # error, interrupted;
    # None while it rings.
    outcome: str | None
    talk_seconds: float | None  # the agent's part of an answered call, once it is over
    recorded: bool  # the agent's record of the call is saved


@dataclass(frozen=True, slots=True)
class AgentDay:
    """One agent's day in [start, end): the offers and the figures."""

    agent_id: str
    offers: list[DayOffer]  # newest first, at most `limit` of them
    handled: int  # offers answered (as `agent_stats`)
    missed: int  # offers let ring past agent_ring_limit (as `agent_stats`)
    without_record: int  # calls answered with no record of the agent's yet
    finished: int  # answered calls whose agent's part is over (hung up or transferred)
    talk_seconds: float  # their talk
    wrap_up_seconds: float  # time in wrap-up that ended in the day

    @property
    def aht_seconds(self) -> float | None:
        """Average handle time: (talk + wrap-up) / calls finished; None before the first."""
        if self.finished == 0:
            return None
        return (self.talk_seconds + self.wrap_up_seconds) / self.finished


async def agent_day(
    conn: asyncpg.Connection, agent_id: str, start: datetime, end: datetime, limit: int = 200
) -> AgentDay:
    """`agent_id`'s offers in [start, end) and the figures of them.

    An offer belongs to the day it ended in (its answer, its miss), as the board
    counts handled and missed; an offer still ringing is listed too. Talk is the
    agent's part of each answered call, from the ACD's `CallEnded` or
    `CallTransferred` (which the records writer keeps on the offer's row); wrap-up
    is the time in wrap-up of each state change out of it in the day
    (`AgentStateChanged.seconds`, as `callcenter_wrap_up_seconds`).
    The average handle time counts the calls whose agent's part is over.
    """
    rows = await conn.fetch(
        f"""SELECT r.call_id, c.queue, c.caller, cu.name AS customer_name, r.offered_at,
                   r.outcome, r.talk_seconds, {RECORD_SAVED} AS recorded
              FROM ring_attempts r
              JOIN calls c ON c.call_id = r.call_id
              LEFT JOIN customer_numbers n ON n.number = c.caller_e164
              LEFT JOIN customers cu ON cu.id = n.customer_id
             WHERE r.agent_id = $3
               AND (({_ended_in("r.")}) OR (r.ended_at IS NULL
                    AND r.offered_at >= $1::timestamptz - interval '1 hour' AND r.offered_at < $2))
             ORDER BY r.offered_at DESC, r.leg_id LIMIT $4""",
        start, end, agent_id, limit,
    )  # fmt: skip
    [figures] = await agent_figures(conn, start, end, [agent_id]) or [_NO_FIGURES]
    return AgentDay(
        agent_id,
        [DayOffer(**dict(row)) for row in rows],
        figures.handled,
        figures.missed,
        figures.records_missing,
        figures.finished,
        figures.talk_seconds,
        figures.wrap_up_seconds,
    )


_NO_FIGURES = AgentFigures("", "")


async def agent_figures(
    conn: asyncpg.Connection, start: datetime, end: datetime, agent_ids: list[str]
) -> list[AgentFigures]:
    """Per agent of `agent_ids` with any offer ended or wrap-up left in [start, end):
    handled and missed (as `agent_stats`), answered at the phone's ring 1 or 2, the
    agent's part of the calls they answered (talk, finished, hung up first: kept on
    the ring attempt by the records writer from the `CallEnded` or `CallTransferred`),
    answered calls without the agent's record, and the time in wrap-up; the agent's
    day ("My day", `agent_day`) and the reports read them alike. Names, state times
    and satisfaction are not here (`agent_stats`, `records.reports`)."""
    # Records missing are counted apart, as an anti-join of the answered offers
    # with the records: a lookup of the records per answered offer in the same
    # pass cost a year's report 15 s at 10 M calls (bench/records_scale.py).
    offers = await conn.fetch(
        f"""WITH offers AS NOT MATERIALIZED (
                SELECT r.agent_id, r.call_id, r.outcome, r.leg_rings,
                       r.talk_seconds AS talk, r.hung_up_by
                  FROM ring_attempts r
                 WHERE r.agent_id = ANY($3::text[]) AND {_ended_in("r.")}
            ), figures AS (
                SELECT agent_id, {_HANDLED} AS handled, {_MISSED} AS missed,
                       count(*) FILTER (WHERE outcome = 'answered' AND leg_rings <= 2)
                         AS ring_1_2,
                       count(talk) AS finished, coalesce(sum(talk), 0) AS talk,
                       count(*) FILTER (WHERE hung_up_by = 'agent') AS hung_up_first
                  FROM offers GROUP BY agent_id
            ), missing AS (
                SELECT r.agent_id, count(DISTINCT r.call_id) AS without_record
                  FROM offers r WHERE r.outcome = 'answered' AND NOT {RECORD_SAVED}
                 GROUP BY r.agent_id)
            SELECT f.*, coalesce(m.without_record, 0) AS without_record
              FROM figures f LEFT JOIN missing m USING (agent_id)""",
        start, end, agent_ids,
    )  # fmt: skip
    wrapped = await wrap_ups(conn, start, end, agent_ids)
    by_agent = {r["agent_id"]: r for r in offers}
    out = []
    for agent in sorted(set(by_agent) | set(wrapped)):
        o, w = by_agent.get(agent), wrapped.get(agent)
        out.append(
            AgentFigures(
                agent,
                "",
                handled=o["handled"] if o else 0,
                missed=o["missed"] if o else 0,
                answered_ring_1_2=o["ring_1_2"] if o else 0,
                finished=o["finished"] if o else 0,
                talk_seconds=float(o["talk"]) if o else 0.0,
                wrap_up_seconds=w[0] if w else 0.0,
                wrap_ups=w[1] if w else 0,
                hung_up_first=o["hung_up_first"] if o else 0,
                records_missing=o["without_record"] if o else 0,
            )
        )
    return out
