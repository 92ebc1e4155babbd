"""The managers' report's figures for a period, read from the records (docs/reports.md).

Each figure is read where the board and the desktop read it: the calls' with
`stats.QUEUE_FIGURES` (grouped here by queue, by local day and by local hour of
day in one pass over the period's calls), the agents' with `stats.agent_figures`
and `state_hours.state_seconds` (state times, as `stats.agent_stats`), the
complaints' and suggestions' with `complaints.monthly`, the call-backs' with
`callbacks.monthly`; what only the report shows (the answer time in rings,
satisfaction, categories and their days) is read here.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

import asyncpg

from callcenter.reports.model import (
    RING_BUCKETS,
    AgentFigures,
    CallbackFigures,
    CategoryFigures,
    ComplaintFigures,
    QueueFigures,
    Report,
)
from callcenter.reports.period import Period

from . import callbacks, complaints
from .state_hours import state_seconds
from .stats import CALLS_IN_PERIOD, QUEUE_FIGURES, agent_figures, queue_figures

__all__ = ["CATEGORIES", "gather"]

#: The categories of the agents' records (`call_forms.category`), in the report's order.
CATEGORIES = ("inquiry", "complaint", "suggestion", "repair", "other")

# One pass over the period's calls, grouped six ways: by queue, by local day, by
# local hour of day, by queue and day, by queue and hour, and not at all (the
# centre); and the answered calls by the ring of their answer (1 … 6, then 7+).
# GROUPING() tells the rows apart.
_CALLS = f"""
SELECT GROUPING(queue, day, hour, ring) AS g, queue, day, hour, ring, {QUEUE_FIGURES}
  FROM (SELECT *, (arrived_at AT TIME ZONE $3)::date AS day,
               extract(hour FROM arrived_at AT TIME ZONE $3)::int AS hour,
               least(rings_to_answer, {RING_BUCKETS}) AS ring
          FROM calls WHERE {CALLS_IN_PERIOD}) c
 GROUP BY GROUPING SETS ((queue), (day), (hour), (ring), (queue, day), (queue, hour), ())"""

# GROUPING(queue, day, hour, ring): a bit set for each column not grouped by.
_BY_QUEUE, _BY_DAY, _BY_HOUR, _BY_RING, _CENTRE = 0b0111, 0b1011, 0b1101, 0b1110, 0b1111
_BY_QUEUE_DAY, _BY_QUEUE_HOUR = 0b0011, 0b0101


async def gather(
    conn: asyncpg.Connection, period: Period, now: datetime, *, callback_zone: str | None = None
) -> Report:
    """The report of `period`, as the records stand at `now` (aware). The call-backs'
    figures are counted on the local days of `callback_zone` (`[callbacks] time_zone`,
    where the worklist's items have their day), the period's zone if None; a note
    says so when the two differ."""
    start, end = period.start, period.end
    rows = await conn.fetch(_CALLS, start, end, period.zone)
    queues: list[QueueFigures] = []
    days: dict[date, QueueFigures] = {}
    hours: dict[int, QueueFigures] = {}
    rings = [0] * RING_BUCKETS
    centre = QueueFigures("")
    queue_days: dict[tuple[str, date], QueueFigures] = {}
    queue_hours: dict[tuple[str, int], QueueFigures] = {}
    for r in rows:
        g = r["g"]
        if g == _BY_QUEUE:
            queues.append(queue_figures(r["queue"], r))
        elif g == _BY_DAY:
            days[r["day"]] = queue_figures("", r)
        elif g == _BY_HOUR:
            hours[r["hour"]] = queue_figures("", r)
        elif g == _BY_RING:
            if r["ring"] is not None:
                rings[r["ring"] - 1] = r["answered"]
        elif g == _CENTRE:
            centre = queue_figures("", r)
        elif g == _BY_QUEUE_DAY:
            queue_days[r["queue"], r["day"]] = queue_figures(r["queue"], r)
        elif g == _BY_QUEUE_HOUR:
            queue_hours[r["queue"], r["hour"]] = queue_figures(r["queue"], r)
    queues.sort(key=lambda q: q.queue)
    notes = [] if now >= end else ["period-not-over"]
    if callback_zone and callback_zone != period.zone:
        notes.append(f"callbacks-zone:{callback_zone}")
    categories, categories_by_day = await _categories(conn, period)
    return Report(
        period=period,
        generated_at=now,
        centre=centre,
        queues=queues,
        by_day=[(d, days.get(d, QueueFigures(""))) for d in period.days],
        by_hour=[(h, hours.get(h, QueueFigures(""))) for h in range(24)],
        rings=rings,
        agents=await _agents(conn, start, min(end, now)),
        complaints=await _complaints(conn, start, end, now),
        callbacks=await _callbacks(conn, period, callback_zone or period.zone),
        categories=categories,
        notes=notes,
        categories_by_day=categories_by_day,
        queue_days=[
            (q.queue, d, queue_days.get((q.queue, d), QueueFigures(q.queue)))
            for q in queues for d in period.days
        ],
        queue_hours=[
            (q.queue, h, queue_hours.get((q.queue, h), QueueFigures(q.queue)))
            for q in queues for h in range(24)
        ],
    )


async def _agents(conn: asyncpg.Connection, start: datetime, end: datetime) -> list[AgentFigures]:
    """Every agent with anything in the period, by id, with their name (the agents
    table's, or the id for one no longer there)."""
    names = {r["id"]: r["name"] for r in await conn.fetch("SELECT id, name FROM agents")}
    if end <= start:
        return []
    scores = await conn.fetch(
        """SELECT agent_id, count(*) FILTER (WHERE satisfaction_asked) AS asked,
                  count(satisfaction_score) AS scored,
                  coalesce(sum(satisfaction_score), 0) AS score_sum
             FROM call_forms WHERE called_at >= $1 AND called_at < $2
            GROUP BY agent_id""",
        start, end,
    )  # fmt: skip
    satisfaction = {r["agent_id"]: r for r in scores}
    # The roster and whoever recorded a call (an agent no longer on it included).
    everyone = sorted(set(names) | set(satisfaction))
    figures = {a.agent_id: a for a in await agent_figures(conn, start, end, everyone)}
    # The state seconds alone: the handled and missed are agent_figures' (read once).
    states = {s.agent_id: s for s in await state_seconds(conn, start, end, everyone)}
    out = []
    for agent in sorted(set(figures) | set(states) | set(satisfaction)):
        s = states.get(agent)
        m = satisfaction.get(agent)
        out.append(
            replace(
                figures.get(agent, AgentFigures(agent, "")),
                name=names.get(agent, agent),
                pause_seconds=s.pause_seconds if s else 0.0,
                idle_seconds=s.idle_seconds if s else 0.0,
                satisfaction_asked=m["asked"] if m else 0,
                satisfaction_scored=m["scored"] if m else 0,
                satisfaction_sum=m["score_sum"] if m else 0,
            )
        )
    return out


async def _complaints(
    conn: asyncpg.Connection, start: datetime, end: datetime, now: datetime
) -> ComplaintFigures:
    s = await complaints.monthly(conn, start, end, now)
    return ComplaintFigures(
        s.received, s.by_class, s.by_status, s.closed, s.closed_in_time, s.overdue,
        s.suggestions, s.suggestions_answered, s.suggestions_adopted,
    )  # fmt: skip


async def _callbacks(conn: asyncpg.Connection, period: Period, zone: str) -> CallbackFigures:
    """The items made for the period's days, which are `zone`'s (the worklist's)."""
    s = await callbacks.monthly(conn, period.first, period.end_day, ZoneInfo(zone))
    return CallbackFigures(s.abandoned, s.reached_same_day, s.reached, s.expired, s.attempts)


async def _categories(
    conn: asyncpg.Connection, period: Period
) -> tuple[list[CategoryFigures], list[tuple[date, dict[str, int]]]]:
    """The agents' records by category in the period and the one before, and in
    the period by local day (every day, every category): a record counts on the
    local day of the call it records. One reading, so a category's count is the
    sum of its days'."""
    before = period.previous()
    rows = await conn.fetch(
        """SELECT category,
                  CASE WHEN called_at >= $2 THEN (called_at AT TIME ZONE $4)::date END AS day,
                  count(*) AS n
             FROM call_forms WHERE called_at >= $1 AND called_at < $3
            GROUP BY 1, 2""",
        before.start, period.start, period.end, period.zone,
    )  # fmt: skip
    by_day = {(r["category"], r["day"]): r["n"] for r in rows}  # day None: the period before
    days = [(d, {c: by_day.get((c, d), 0) for c in CATEGORIES}) for d in period.days]
    totals = [
        CategoryFigures(c, sum(n[c] for _, n in days), by_day.get((c, None), 0))
        for c in CATEGORIES
    ]
    return totals, days
