"""The call-back worklist in the records (issue 20, docs/callbacks.md): the
refresh that makes and closes items, the list, assignment, attempts, the
gauges and the month's KPI.

The rules are `casework.callbacks` (pure): an attempt locks the item, applies
the rule to what is stored, and writes the item, the attempt and its history
row (`case_events`, kind `callback`) in one transaction. The refresh selects
what is owed with SQL and lets the rules say when an abandoned caller's item
expires; what it closes or expires is in the history too (actor `refresh`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from callcenter.casework.callbacks import (
    Item,
    Kind,
    Outcome,
    Policy,
    Status,
    attempt,
    expires_at,
)

from .teams import follow_up_in

__all__ = [
    "REFRESH_ACTOR",
    "Attempt",
    "CallbackGauges",
    "CallbackScope",
    "CallbackStats",
    "NoSuchItem",
    "Refreshed",
    "StoredItem",
    "assign",
    "attempts_of",
    "gauges",
    "in_scope",
    "item",
    "monthly",
    "record_attempt",
    "refresh",
    "search",
]

#: The actor of the refresh's changes in the history.
REFRESH_ACTOR = "refresh"


class NoSuchItem(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class StoredItem:
    id: int
    number: str | None
    local_day: date | None
    queue: str | None
    call_id: str | None
    follow_up_id: int | None
    complaint_id: int | None
    abandons: int
    last_abandon_at: datetime | None
    assigned_to: str | None
    made_at: datetime
    updated_at: datetime
    work: Item


@dataclass(frozen=True, slots=True)
class Attempt:
    at: datetime
    actor: str
    outcome: str
    notes: str | None
    call_id: str | None


@dataclass(frozen=True, slots=True)
class CallbackScope:
    """The items one login sees: those assigned to `user`, to a member of `team`,
    and the unassigned ones of the queues of `user`'s agent groups or of `team`."""

    user: str
    team: str | None


@dataclass(frozen=True, slots=True)
class Refreshed:
    made: int
    closed: int
    expired: int


@dataclass(frozen=True, slots=True)
class CallbackGauges:
    pending: dict[str, int] = field(default_factory=dict)  # open items by kind
    oldest: dict[str, float] = field(default_factory=dict)  # seconds since the oldest's owed_since


@dataclass(frozen=True, slots=True)
class CallbackStats:
    abandoned: int  # abandoned items made for the month's local days
    reached_same_day: int  # of them, reached on the abandon's local day
    reached: int  # of them, reached at all
    expired: int
    attempts: dict[str, int]  # the month's attempts (all kinds) by outcome

    @property
    def same_day_rate(self) -> float | None:
        return None if self.abandoned == 0 else self.reached_same_day / self.abandoned


_COLUMNS = (
    "i.id, i.kind, i.number, i.local_day, i.queue, i.call_id, i.follow_up_id, i.owed_since,"
    " i.last_abandon_at, i.abandons, i.assigned_to, i.status, i.attempts, i.max_attempts,"
    " i.next_attempt_at, i.expires_at, i.closed_at, i.closed_as, i.made_at, i.updated_at,"
    " (SELECT u.complaint_id FROM follow_ups u WHERE u.id = i.follow_up_id) AS complaint_id"
)


def _item(r: asyncpg.Record) -> StoredItem:
    work = Item(
        Kind(r["kind"]), Status(r["status"]), r["owed_since"], r["attempts"], r["max_attempts"],
        r["next_attempt_at"], r["expires_at"], r["closed_at"], r["closed_as"],
    )  # fmt: skip
    return StoredItem(
        r["id"], r["number"], r["local_day"], r["queue"], r["call_id"], r["follow_up_id"],
        r["complaint_id"], r["abandons"], r["last_abandon_at"], r["assigned_to"], r["made_at"],
        r["updated_at"], work,
    )  # fmt: skip


def _scope_sql(i: str, user: str, team: str) -> str:
    """The condition "item `i` is in the scope ($user, $team)"; `user` NULL: every item."""
    members = (
        f"(SELECT a.id FROM agents a WHERE a.groups ? {team}"
        f" UNION ALL SELECT s.id FROM staff s WHERE s.team = {team})"
    )
    queues = (
        f"(SELECT q.name FROM queues q WHERE q.config->>'group' = {team}"
        f" OR EXISTS (SELECT 1 FROM agents a WHERE a.id = {user}"
        f" AND a.groups ? (q.config->>'group')))"
    )
    return (
        f"({user}::text IS NULL OR {i}.assigned_to = {user}"
        f" OR ({team}::text IS NOT NULL AND {i}.assigned_to IN {members})"
        f" OR ({i}.assigned_to IS NULL AND ({i}.queue IN {queues}"
        f" OR ({team}::text IS NOT NULL AND EXISTS (SELECT 1 FROM follow_ups u"
        f" WHERE u.id = {i}.follow_up_id AND {follow_up_in('u', user, team)})))))"
    )


def _params(scope: CallbackScope | None) -> tuple[str | None, str | None]:
    return (None, None) if scope is None else (scope.user, scope.team)


# -- the refresh ----------------------------------------------------------------------------

#: The days each abandoned caller is owed a call for: their abandons, not short ones nor
#: failed calls (outcome 'abandoned' only), and whether an answered call followed the last.
_ABANDONED_DAYS = """
WITH abandons AS (
    SELECT c.call_id, c.queue, c.arrived_at, COALESCE(c.caller_e164, c.caller) AS number,
           (c.arrived_at AT TIME ZONE $3)::date AS day
    FROM calls c
    WHERE c.outcome = 'abandoned' AND c.arrived_at >= $1 AND c.arrived_at <= $2
      AND COALESCE(c.caller_e164, c.caller) ~ '[0-9]'
)
SELECT d.*, EXISTS (
           SELECT 1 FROM calls a
           WHERE (a.caller_e164 = d.number OR a.caller = d.number)
             AND a.outcome = 'answered' AND a.arrived_at > d.last_at
       ) AS answered_later
FROM (SELECT number, day, count(*)::int AS abandons, min(arrived_at) AS first_at,
             max(arrived_at) AS last_at,
             (array_agg(call_id ORDER BY arrived_at, call_id))[1] AS call_id,
             (array_agg(queue ORDER BY arrived_at, call_id))[1] AS queue
      FROM abandons GROUP BY number, day) d
ORDER BY d.first_at
"""

_UPSERT_ABANDONED = """
INSERT INTO callback_items (kind, number, local_day, queue, call_id, owed_since, last_abandon_at,
                            abandons, max_attempts, expires_at, made_at, updated_at)
VALUES ('abandoned', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
ON CONFLICT (number, local_day) WHERE kind = 'abandoned' DO UPDATE
    SET last_abandon_at = EXCLUDED.last_abandon_at, abandons = EXCLUDED.abandons,
        updated_at = EXCLUDED.updated_at
    WHERE callback_items.status = 'open'
      AND callback_items.last_abandon_at IS DISTINCT FROM EXCLUDED.last_abandon_at
RETURNING (xmax = 0) AS made
"""

#: Open items closed or expired by the refresh: (closed_as or NULL, the new status, condition).
_CLOSE_ANSWERED = """
UPDATE callback_items i SET status = 'closed', closed_as = 'answered-again', closed_at = $1,
       next_attempt_at = NULL, updated_at = $1
WHERE i.kind = 'abandoned' AND i.status = 'open' AND EXISTS (
    SELECT 1 FROM calls a WHERE (a.caller_e164 = i.number OR a.caller = i.number)
      AND a.outcome = 'answered' AND a.arrived_at > i.last_abandon_at)
RETURNING i.id, i.status
"""
_CLOSE_DONE = """
UPDATE callback_items i SET status = 'closed', closed_as = 'done', closed_at = $1,
       next_attempt_at = NULL, updated_at = $1
FROM follow_ups u
WHERE i.follow_up_id = u.id AND i.status = 'open' AND u.done_at IS NOT NULL
RETURNING i.id, i.status
"""
_EXPIRE = """
UPDATE callback_items i SET status = 'expired', next_attempt_at = NULL, updated_at = $1
WHERE i.status = 'open' AND i.expires_at <= $1
RETURNING i.id, i.status
"""

_FOLLOW_UPS = """
WITH made AS (
    INSERT INTO callback_items (kind, number, queue, follow_up_id, owed_since, assigned_to,
                                max_attempts, made_at, updated_at)
    SELECT u.kind,
           COALESCE(
               (SELECT c.contact FROM complaints c WHERE c.id = u.complaint_id),
               (SELECT f.contact FROM call_forms f WHERE f.id = u.form_id),
               (SELECT COALESCE(k.caller_e164, k.caller) FROM call_forms f
                  JOIN calls k ON k.call_id = f.call_id WHERE f.id = u.form_id),
               (SELECT min(n.number) FROM customer_numbers n WHERE n.customer_id = u.customer_id)),
           (SELECT k.queue FROM call_forms f JOIN calls k ON k.call_id = f.call_id
              WHERE f.id = u.form_id),
           u.id, u.due_at, u.owner, $2::int, $1::timestamptz, $1::timestamptz
    FROM follow_ups u
    WHERE u.done_at IS NULL AND u.due_at <= $3
    ON CONFLICT (follow_up_id) DO NOTHING
    RETURNING 1
)
SELECT count(*)::int FROM made
"""
#: A promised reply rescheduled: its open item is owed from the new due time.
_FOLLOW_UPS_MOVED = """
UPDATE callback_items i SET owed_since = u.due_at, updated_at = $1
FROM follow_ups u
WHERE i.follow_up_id = u.id AND i.status = 'open' AND u.done_at IS NULL
  AND i.owed_since <> u.due_at
"""


async def refresh(
    conn: asyncpg.Connection,
    now: datetime,
    zone: ZoneInfo,
    policy: Policy,
    lead: timedelta,
) -> Refreshed:
    """Make the items owed at `now` and close or expire those no longer owed, in one
    transaction: abandoned callers by local day (in `zone`), skipped when answered
    after their last abandon; follow-ups due within `lead`."""
    # The abandons of the days whose items could still be open: older ones have expired.
    since = now - policy.expire - timedelta(days=2)
    made = 0
    async with conn.transaction():
        days = await conn.fetch(_ABANDONED_DAYS, since, now, zone.key)
        rows = []
        for d in days:
            ends = expires_at(d["day"], zone, policy)
            if d["answered_later"] or ends <= now:
                continue
            rows.append((d["number"], d["day"], d["queue"], d["call_id"], d["first_at"],
                         d["last_at"], d["abandons"], policy.max_attempts, ends, now))  # fmt: skip
        for row in rows:
            result = await conn.fetchrow(_UPSERT_ABANDONED, *row)
            made += int(result is not None and result["made"])
        made += await conn.fetchval(_FOLLOW_UPS, now, policy.max_attempts, now + lead)
        await conn.execute(_FOLLOW_UPS_MOVED, now)
        closed = [*await conn.fetch(_CLOSE_ANSWERED, now), *await conn.fetch(_CLOSE_DONE, now)]
        expired = await conn.fetch(_EXPIRE, now)
        await conn.executemany(
            "INSERT INTO case_events (case_kind, case_id, at, actor, action, from_status,"
            " to_status, details) VALUES ('callback', $1, $2, $3, $4, 'open', $5, '{}')",
            [(r["id"], now, REFRESH_ACTOR, "close" if r["status"] == "closed" else "expire",
              r["status"]) for r in (*closed, *expired)],
        )  # fmt: skip
    return Refreshed(made, len(closed), len(expired))


# -- reading --------------------------------------------------------------------------------


async def item(conn: asyncpg.Connection, item_id: int) -> StoredItem | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM callback_items i WHERE i.id = $1", item_id)
    return None if row is None else _item(row)


async def in_scope(conn: asyncpg.Connection, item_id: int, scope: CallbackScope | None) -> bool:
    """Is item `item_id` there and in `scope` (None: every item)?"""
    return bool(await conn.fetchval(
        f"SELECT EXISTS (SELECT 1 FROM callback_items i WHERE i.id = $1"
        f" AND {_scope_sql('i', '$2', '$3')})",
        item_id, *_params(scope),
    ))  # fmt: skip


async def search(
    conn: asyncpg.Connection,
    now: datetime,
    *,
    status: Status | None = Status.OPEN,
    kind: Kind | None = None,
    queue: str | None = None,
    assigned_to: str | None = None,
    due_now: bool = False,
    limit: int = 100,
    offset: int = 0,
    scope: CallbackScope | None = None,
    free_for: str | None = None,
) -> list[StoredItem]:
    """Items, the longest owed first; `due_now`: open, owed by `now` and not waiting
    for a retry (`casework.callbacks.due`); `scope`: those it lets through (None: all);
    `free_for`: not held for another agent than this one (`hold`)."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM callback_items i
            WHERE ($1::text IS NULL OR i.status = $1) AND ($2::text IS NULL OR i.kind = $2)
              AND ($3::text IS NULL OR i.queue = $3) AND ($4::text IS NULL OR i.assigned_to = $4)
              AND (NOT $5 OR (i.status = 'open' AND i.owed_since <= $6
                              AND (i.next_attempt_at IS NULL OR i.next_attempt_at <= $6)
                              AND (i.expires_at IS NULL OR i.expires_at > $6)))
              AND {_scope_sql('i', '$9', '$10')}
              AND ($11::text IS NULL OR i.held_by IS NULL OR i.held_by = $11
                   OR i.held_until <= $6)
            ORDER BY i.owed_since, i.id LIMIT $7 OFFSET $8""",
        None if status is None else status.value, None if kind is None else kind.value, queue,
        assigned_to, due_now, now, limit, offset, *_params(scope), free_for,
    )  # fmt: skip
    return [_item(r) for r in rows]


#: How long an item offered to an agent, or called by them, is held for them.
HOLD = timedelta(minutes=2)


async def hold(
    conn: asyncpg.Connection, item_id: int | None, agent: str, now: datetime, until: datetime
) -> str | None:
    """Hold open item `item_id` for `agent` until `until` (the preview offering it,
    their Call), letting go of any other they held; None when held, else who holds
    it (another agent, until their hold runs out). `item_id` None lets go of all."""
    async with conn.transaction():
        await conn.execute(
            "UPDATE callback_items SET held_by = NULL, held_until = NULL"
            " WHERE held_by = $1 AND id IS DISTINCT FROM $2",
            agent, item_id,
        )  # fmt: skip
        if item_id is None:
            return None
        taken = await conn.fetchval(
            "UPDATE callback_items SET held_by = $2, held_until = $4 WHERE id = $1"
            " AND (held_by IS NULL OR held_by = $2 OR held_until <= $3) RETURNING id",
            item_id, agent, now, until,
        )  # fmt: skip
        if taken is not None:
            return None
        holder: str | None = await conn.fetchval(
            "SELECT held_by FROM callback_items WHERE id = $1", item_id
        )
        return holder or "another agent"


async def attempts_of(conn: asyncpg.Connection, item_id: int) -> list[Attempt]:
    rows = await conn.fetch(
        "SELECT at, actor, outcome, notes, call_id FROM callback_attempts WHERE item_id = $1"
        " ORDER BY id",
        item_id,
    )
    return [Attempt(r["at"], r["actor"], r["outcome"], r["notes"], r["call_id"]) for r in rows]


# -- changes --------------------------------------------------------------------------------


async def _locked(conn: asyncpg.Connection, item_id: int) -> StoredItem:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM callback_items i WHERE i.id = $1 FOR UPDATE", item_id
    )
    if row is None:
        raise NoSuchItem(item_id)
    return _item(row)


async def assign(
    conn: asyncpg.Connection, item_id: int, agent_id: str | None, actor: str, now: datetime
) -> StoredItem:
    """Give the item to `agent_id` (None: to its queue again); `NoSuchItem`."""
    async with conn.transaction():
        before = await _locked(conn, item_id)
        await conn.execute(
            "UPDATE callback_items SET assigned_to = $2, updated_at = $3 WHERE id = $1",
            item_id, agent_id, now,
        )  # fmt: skip
        status = before.work.status
        await _event(conn, item_id, now, actor, "assign", status, status,
                     {"previous": before.assigned_to, "assigned_to": agent_id})  # fmt: skip
    stored = await item(conn, item_id)
    assert stored is not None
    return stored


async def record_attempt(
    conn: asyncpg.Connection,
    item_id: int,
    outcome: Outcome,
    actor: str,
    now: datetime,
    policy: Policy,
    *,
    notes: str | None = None,
    call_id: str | None = None,
    take: bool = False,
) -> StoredItem:
    """Record an attempt; `take`: an unassigned item becomes `actor`'s (an agent who
    worked it). `NoSuchItem`, or `CallbackRefused` (nothing stored)."""
    async with conn.transaction():
        before = await _locked(conn, item_id)
        w = attempt(before.work, outcome, now, policy)
        await conn.execute(
            "UPDATE callback_items SET status = $2, attempts = $3, next_attempt_at = $4,"
            " closed_at = $5, closed_as = $6, updated_at = $7, held_by = NULL, held_until = NULL,"
            " assigned_to = CASE WHEN $8 AND assigned_to IS NULL THEN $9 ELSE assigned_to END"
            " WHERE id = $1",
            item_id, w.status.value, w.attempts, w.next_attempt_at, w.closed_at, w.closed_as,
            now, take, actor,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO callback_attempts (item_id, at, actor, outcome, notes, call_id)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            item_id, now, actor, outcome.value, notes, call_id,
        )  # fmt: skip
        await _event(conn, item_id, now, actor, "attempt", before.work.status, w.status,
                     {"outcome": outcome.value, "notes": notes, "call_id": call_id})  # fmt: skip
    stored = await item(conn, item_id)
    assert stored is not None
    return stored


async def _event(
    conn: asyncpg.Connection,
    item_id: int,
    at: datetime,
    actor: str,
    action: str,
    before: Status,
    after: Status,
    details: dict[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO case_events (case_kind, case_id, at, actor, action, from_status,"
        " to_status, details) VALUES ('callback', $1, $2, $3, $4, $5, $6, $7)",
        item_id, at, actor, action, before.value, after.value, json.dumps(details),
    )  # fmt: skip


# -- figures --------------------------------------------------------------------------------


async def gauges(conn: asyncpg.Connection, now: datetime) -> CallbackGauges:
    """Open items by kind, and how long the oldest of each has been owed (an item
    past its expiry that the refresh has not expired yet is not counted)."""
    rows = await conn.fetch(
        "SELECT kind, count(*)::int AS n, min(owed_since) AS oldest FROM callback_items"
        " WHERE status = 'open' AND owed_since <= $1 AND (expires_at IS NULL OR expires_at > $1)"
        " GROUP BY kind",
        now,
    )
    pending = {k.value: 0 for k in Kind}
    oldest = {k.value: 0.0 for k in Kind}
    for r in rows:
        pending[r["kind"]] = r["n"]
        oldest[r["kind"]] = max(0.0, (now - r["oldest"]).total_seconds())
    return CallbackGauges(pending, oldest)


async def monthly(
    conn: asyncpg.Connection, first_day: date, end_day: date, zone: ZoneInfo
) -> CallbackStats:
    """The month's KPI: the abandoned items of local days [first_day, end_day) and how
    many were reached on the abandon's own local day; the month's attempts by outcome."""
    row = await conn.fetchrow(
        """SELECT count(*)::int AS abandoned,
                  count(*) FILTER (WHERE EXISTS (
                      SELECT 1 FROM callback_attempts t WHERE t.item_id = i.id
                        AND t.outcome = 'reached'
                        AND (t.at AT TIME ZONE $3)::date = i.local_day))::int AS same_day,
                  count(*) FILTER (WHERE EXISTS (
                      SELECT 1 FROM callback_attempts t WHERE t.item_id = i.id
                        AND t.outcome = 'reached'))::int AS reached,
                  count(*) FILTER (WHERE i.status = 'expired')::int AS expired
           FROM callback_items i
           WHERE i.kind = 'abandoned' AND i.local_day >= $1 AND i.local_day < $2""",
        first_day, end_day, zone.key,
    )  # fmt: skip
    assert row is not None
    tried = await conn.fetch(
        "SELECT outcome, count(*)::int AS n FROM callback_attempts"
        " WHERE (at AT TIME ZONE $3)::date >= $1 AND (at AT TIME ZONE $3)::date < $2"
        " GROUP BY outcome",
        first_day, end_day, zone.key,
    )  # fmt: skip
    attempts = {o.value: 0 for o in Outcome} | {r["outcome"]: r["n"] for r in tried}
    return CallbackStats(row["abandoned"], row["same_day"], row["reached"], row["expired"],
                         attempts)  # fmt: skip
