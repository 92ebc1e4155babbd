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
still ringing is neither handled nor missed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

__all__ = ["AgentStats", "QueueStats", "StateRow", "agent_stats", "queue_stats", "state_seconds"]


@dataclass(frozen=True, slots=True)
class QueueStats:
    queue: str
    offered: int
    answered: int
    abandoned: int  # short abandons included
    short_abandons: int
    answered_within_target: int
    overflowed: int
    asa_seconds: float | None

    @property
    def service_level(self) -> float | None:
        base = self.offered - self.short_abandons
        return None if base <= 0 else self.answered_within_target / base

    @property
    def abandonment_rate(self) -> float | None:
        base = self.offered - self.short_abandons
        return None if base <= 0 else (self.abandoned - self.short_abandons) / base


async def queue_stats(conn: asyncpg.Connection, start: datetime, end: datetime) -> list[QueueStats]:
    """Per queue, for calls that arrived in [start, end)."""
    rows = await conn.fetch(
        """SELECT queue,
                  count(*) AS offered,
                  count(*) FILTER (WHERE answered_at IS NOT NULL) AS answered,
                  count(*) FILTER (WHERE outcome IN ('abandoned', 'short-abandon')) AS abandoned,
                  count(*) FILTER (WHERE outcome = 'short-abandon') AS short_abandons,
                  count(*) FILTER (WHERE within_target) AS within_target,
                  count(*) FILTER (WHERE outcome = 'overflow') AS overflowed,
                  avg(wait_seconds) FILTER (WHERE answered_at IS NOT NULL) AS asa
             FROM calls
            WHERE arrived_at >= $1 AND arrived_at < $2 AND outcome IS DISTINCT FROM 'rejected'
            GROUP BY queue ORDER BY queue""",
        start,
        end,
    )
    return [
        QueueStats(
            r["queue"],
            r["offered"],
            r["answered"],
            r["abandoned"],
            r["short_abandons"],
            r["within_target"],
            r["overflowed"],
            None if r["asa"] is None else float(r["asa"]),
        )
        for r in rows
    ]


@dataclass(frozen=True, slots=True)
class AgentStats:
    """One agent's day so far: answers, ring-no-answers, seconds paused and idle."""

    agent_id: str
    handled: int  # calls answered (an answer after a transfer counts for its agent)
    missed: int  # offers let ring past agent_ring_limit
    pause_seconds: float  # in not-ready
    idle_seconds: float  # in ready


@dataclass(frozen=True, slots=True)
class StateRow:
    """One row of agent_state_history, as `state_seconds` reads it."""

    agent_id: str
    at: float  # wall seconds
    state: str
    boot: str  # the process that wrote it (the first part of its key)
    seq: int  # its order in that process


def state_seconds(rows: list[StateRow], start: float, end: float) -> dict[str, tuple[float, float]]:
    """Per agent, (seconds not ready, seconds ready) within [start, end).

    Each row opens an interval that the agent's next row of the same process
    closes. A process that stopped wrote no row for it (its agents went
    offline with it), so an agent's last row of a process is closed at that
    process's last state change of any agent: the best trace of when it
    stopped. `rows` holds, per agent, the last row before `start` and every
    row in [start, end).
    """
    boot_end: dict[str, float] = {}
    for row in rows:
        boot_end[row.boot] = max(boot_end.get(row.boot, row.at), row.at)
    ordered = sorted(rows, key=lambda r: (r.agent_id, r.at, r.boot, r.seq))
    out: dict[str, tuple[float, float]] = {}
    for i, row in enumerate(ordered):
        nxt = ordered[i + 1] if i + 1 < len(ordered) else None
        same = nxt is not None and nxt.agent_id == row.agent_id and nxt.boot == row.boot
        closed = nxt.at if same and nxt is not None else boot_end[row.boot]
        seconds = max(0.0, min(closed, end) - max(row.at, start))
        paused, idle = out.get(row.agent_id, (0.0, 0.0))
        if row.state == "not-ready":
            paused += seconds
        elif row.state == "ready":
            idle += seconds
        out[row.agent_id] = (paused, idle)
    return out


async def agent_stats(
    conn: asyncpg.Connection, start: datetime, end: datetime, agent_ids: list[str]
) -> list[AgentStats]:
    """Per agent of `agent_ids`, for [start, end), where `end` is when this
    process started (every earlier process has stopped). Reads through the
    (agent_id, time) indexes, so the cost grows with the day, not the table.
    Pass the whole floor: a stopped process's end is read from their rows."""
    attempts = await conn.fetch(
        """SELECT agent_id,
                  count(*) FILTER (WHERE outcome = 'answered') AS handled,
                  count(*) FILTER (WHERE outcome = 'missed') AS missed
             FROM ring_attempts
            WHERE agent_id = ANY($3::text[])
              AND offered_at >= $1::timestamptz - interval '1 hour' AND offered_at < $2
              AND ended_at >= $1 AND ended_at < $2
            GROUP BY agent_id""",
        start,
        end,
        agent_ids,
    )
    history = await conn.fetch(
        """SELECT h.agent_id, h.at, h.state, h.key
             FROM unnest($3::text[]) AS a(id)
             CROSS JOIN LATERAL (
                   SELECT agent_id, at, state, key FROM agent_state_history
                    WHERE agent_id = a.id AND at < $1 ORDER BY at DESC LIMIT 1) AS h
           UNION ALL
           SELECT agent_id, at, state, key FROM agent_state_history
            WHERE agent_id = ANY($3::text[]) AND at >= $1 AND at < $2""",
        start,
        end,
        agent_ids,
    )
    rows = []
    for r in history:
        boot, _, seq = str(r["key"]).rpartition(":")
        rows.append(StateRow(r["agent_id"], r["at"].timestamp(), r["state"], boot, int(seq or 0)))
    durations = state_seconds(rows, start.timestamp(), end.timestamp())
    counts = {r["agent_id"]: (r["handled"], r["missed"]) for r in attempts}
    return [
        AgentStats(agent, *counts.get(agent, (0, 0)), *durations.get(agent, (0.0, 0.0)))
        for agent in sorted(set(counts) | set(durations))
    ]
