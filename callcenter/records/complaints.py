"""Complaints in the records: received, worked through their states, audited (issue 18).

The rules are `casework.complaints` (pure); this module loads a complaint,
applies a change there and stores the result with one `complaint_events` row
(who, what, when, the change), in one transaction with the row locked, so two
supervisors' changes to one complaint are applied one after the other, each
to what the other left. A complaint's call-back follow-up (`follow_ups`,
kind `call-back`) follows it: due at its deadline, done when a call-back
reaches the complainant.

Also the figures read from the complaints: the open and overdue ones by class
and the follow-ups due, for the metrics (`gauges`), and the month's
statistics (004 §3.7.7, `monthly`). docs/complaints.md.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

import asyncpg

from callcenter.casework.complaints import (
    Complaint,
    ComplaintClass,
    Input,
    Status,
    apply,
    kind_of,
    received,
)

from .teams import Scope, complaint_in

__all__ = [
    "ComplaintEvent",
    "ComplaintGauges",
    "MonthlyStats",
    "NoSuchComplaint",
    "StoredComplaint",
    "change_complaint",
    "complaint",
    "complaint_history",
    "gauges",
    "monthly",
    "receive_complaint",
    "search",
]


class NoSuchComplaint(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class StoredComplaint:
    """A complaint as stored: what was complained of, and its state (`work`)."""

    id: int
    form_id: str | None
    customer_id: int | None
    matter: str
    occurred_at: datetime | None
    complainant: str | None
    contact: str | None
    reported_by: str | None
    updated_at: datetime
    work: Complaint


@dataclass(frozen=True, slots=True)
class ComplaintEvent:
    at: datetime
    actor: str
    action: str  # an InputKind's value, or "receive"
    from_status: str | None
    to_status: str
    details: dict[str, Any]


_WORK = (
    "status", "class", "received_at", "deadline_at", "owner", "investigated_by", "findings",
    "on_site", "action", "action_owner", "action_due_at", "action_checked_at",
    "action_effective", "contacted_at", "corrected_at", "called_back_at", "satisfied",
    "customer_words", "closed_at",
)  # fmt: skip
_COLUMNS = (
    "id, form_id, customer_id, matter, occurred_at, complainant, contact, reported_by,"
    " updated_at, " + ", ".join(_WORK)
)


def _stored(row: asyncpg.Record) -> StoredComplaint:
    values = {name: row[name] for name in _WORK}
    values["status"] = Status(values["status"])
    values["complaint_class"] = ComplaintClass(values.pop("class"))
    return StoredComplaint(
        row["id"], row["form_id"], row["customer_id"], row["matter"], row["occurred_at"],
        row["complainant"], row["contact"], row["reported_by"], row["updated_at"],
        Complaint(**values),
    )  # fmt: skip


async def receive_complaint(
    conn: asyncpg.Connection,
    *,
    matter: str,
    received_at: datetime,
    reported_by: str,
    complaint_class: ComplaintClass = ComplaintClass.ORDINARY,
    occurred_at: datetime | None = None,
    customer_id: int | None = None,
    form_id: str | None = None,
    complainant: str | None = None,
    contact: str | None = None,
) -> int:
    """Log a complaint (from a call's form, or any staff member's intake) with its
    provisional class, deadline, call-back and the first row of its history."""
    work = received(received_at, complaint_class)
    async with conn.transaction():
        complaint_id: int = await conn.fetchval(
            """INSERT INTO complaints (form_id, customer_id, class, matter, occurred_at,
                   deadline_at, received_at, reported_by, complainant, contact, status)
               VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) RETURNING id""",
            form_id, customer_id, complaint_class.value, matter, occurred_at, work.deadline_at,
            received_at, reported_by, complainant, contact, work.status.value,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO follow_ups (form_id, complaint_id, customer_id, kind, due_at, notes)"
            " VALUES ($1, $2, $3, 'call-back', $4, 'complaint call-back (SOP 004 §3.7.4)')",
            form_id, complaint_id, customer_id, work.deadline_at,
        )  # fmt: skip
        await _event(
            conn, complaint_id, received_at, reported_by, "receive", None, work.status,
            {"class": complaint_class.value},
        )  # fmt: skip
    return complaint_id


async def complaint(conn: asyncpg.Connection, complaint_id: int) -> StoredComplaint | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM complaints WHERE id = $1", complaint_id)
    return None if row is None else _stored(row)


async def complaint_history(conn: asyncpg.Connection, complaint_id: int) -> list[ComplaintEvent]:
    """Every change, oldest first."""
    rows = await conn.fetch(
        "SELECT at, actor, action, from_status, to_status, details FROM complaint_events"
        " WHERE complaint_id = $1 ORDER BY id",
        complaint_id,
    )
    return events_of(rows)


def events_of(rows: list[asyncpg.Record]) -> list[ComplaintEvent]:
    """History rows (``at, actor, action, from_status, to_status, details``) as
    events: the complaints' and the other cases' history tables alike."""
    return [
        ComplaintEvent(
            r["at"], r["actor"], r["action"], r["from_status"], r["to_status"],
            json.loads(r["details"]),
        )
        for r in rows
    ]


async def change_complaint(
    conn: asyncpg.Connection, complaint_id: int, change: Input, actor: str, now: datetime
) -> StoredComplaint:
    """Apply `change` (made by `actor` at `now`) and record it.

    Raises `NoSuchComplaint`, and `casework.complaints.ComplaintError` for a
    change the complaint cannot take (nothing is stored then).
    """
    async with conn.transaction():
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM complaints WHERE id = $1 FOR UPDATE", complaint_id
        )
        if row is None:
            raise NoSuchComplaint(complaint_id)
        before = _stored(row)
        after = apply(before.work, change, now)
        w = after  # short, for the long statement
        await conn.execute(
            """UPDATE complaints SET status = $2, class = $3, deadline_at = $4, owner = $5,
                   investigated_by = $6, findings = $7, on_site = $8, action = $9,
                   action_owner = $10, action_due_at = $11, action_checked_at = $12,
                   action_effective = $13, contacted_at = $14, corrected_at = $15,
                   called_back_at = $16, satisfied = $17, customer_words = $18,
                   closed_at = $19, met_at = $20, updated_at = $21
               WHERE id = $1""",
            complaint_id, w.status.value, w.complaint_class.value, w.deadline_at, w.owner,
            w.investigated_by, w.findings, w.on_site, w.action, w.action_owner,
            w.action_due_at, w.action_checked_at, w.action_effective, w.contacted_at,
            w.corrected_at, w.called_back_at, w.satisfied, w.customer_words, w.closed_at,
            w.met_at(), now,
        )  # fmt: skip
        # The call-back is due by the deadline (moved with the class), done once one reached them.
        await conn.execute(
            "UPDATE follow_ups SET due_at = $2, owner = $3,"
            " done_at = CASE WHEN done_at IS NULL AND $4::timestamptz IS NOT NULL"
            "                THEN $4 ELSE done_at END,"
            " done_by = CASE WHEN done_by IS NULL AND $4::timestamptz IS NOT NULL"
            "                THEN $5 ELSE done_by END"
            " WHERE complaint_id = $1 AND kind = 'call-back'",
            complaint_id, w.deadline_at, w.owner, w.called_back_at, actor,
        )  # fmt: skip
        details = asdict(change)
        await _event(
            conn, complaint_id, now, actor, kind_of(change).value, before.work.status, w.status,
            details,
        )  # fmt: skip
    return replace(before, work=after, updated_at=now)


async def _event(
    conn: asyncpg.Connection,
    complaint_id: int,
    at: datetime,
    actor: str,
    action: str,
    before: Status | None,
    after: Status,
    details: dict[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO complaint_events (complaint_id, at, actor, action, from_status, to_status,"
        " details) VALUES ($1,$2,$3,$4,$5,$6,$7)",
        complaint_id, at, actor, action, None if before is None else before.value, after.value,
        json.dumps(details, default=_plain),
    )  # fmt: skip


def _plain(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


async def search(
    conn: asyncpg.Connection,
    now: datetime,
    *,
    status: Status | None = None,
    complaint_class: ComplaintClass | None = None,
    owner: str | None = None,
    due_from: datetime | None = None,
    due_to: datetime | None = None,
    overdue: bool | None = None,
    open_only: bool = False,
    limit: int = 100,
    offset: int = 0,
    scope: Scope | None = None,
) -> list[StoredComplaint]:
    """Complaints matching every filter given, by deadline (the soonest first).
    `due_from`/`due_to`: the deadline in [from, to); `overdue` as of `now`;
    `scope`: only those it lets through (`records.teams`; None: all)."""
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM complaints
            WHERE ($1::text IS NULL OR status = $1)
              AND ($2::text IS NULL OR class = $2)
              AND ($3::text IS NULL OR owner = $3)
              AND ($4::timestamptz IS NULL OR deadline_at >= $4)
              AND ($5::timestamptz IS NULL OR deadline_at < $5)
              AND ($6::boolean IS NULL OR $6 = (status <> 'closed' AND met_at IS NULL
                                                AND deadline_at < $7))
              AND (NOT $8 OR status <> 'closed')
              AND {complaint_in("complaints", "$11", "$12")}
            ORDER BY deadline_at, id LIMIT $9 OFFSET $10""",
        None if status is None else status.value,
        None if complaint_class is None else complaint_class.value,
        owner, due_from, due_to, overdue, now, open_only, limit, offset,
        None if scope is None else scope.user, None if scope is None else scope.team,
    )  # fmt: skip
    return [_stored(r) for r in rows]


@dataclass(frozen=True, slots=True)
class ComplaintGauges:
    open: dict[str, int]  # by class, every class present
    overdue: dict[str, int]  # by class
    followups_due: dict[str, int]  # by kind: not done and due by now


async def gauges(conn: asyncpg.Connection, now: datetime) -> ComplaintGauges:
    """The open and overdue complaints by class, the follow-ups due: one statement,
    on the partial indexes of open complaints and pending follow-ups."""
    rows = await conn.fetch(
        """SELECT 'c' AS what, class AS key, count(*) AS n,
                  count(*) FILTER (WHERE met_at IS NULL AND deadline_at < $1) AS late
           FROM complaints WHERE status <> 'closed' GROUP BY class
           UNION ALL
           SELECT 'f', kind, count(*), 0 FROM follow_ups
           WHERE done_at IS NULL AND due_at <= $1 GROUP BY kind""",
        now,
    )
    classes = {c.value: 0 for c in ComplaintClass}
    open_, overdue = dict(classes), dict(classes)
    due = {"call-back": 0, "reply": 0}
    for r in rows:
        if r["what"] == "c":
            open_[r["key"]], overdue[r["key"]] = r["n"], r["late"]
        else:
            due[r["key"]] = r["n"]
    return ComplaintGauges(open_, overdue, due)


@dataclass(frozen=True, slots=True)
class MonthlyStats:
    """SOP 004 §3.7.7, for the complaints received in [start, end)."""

    start: datetime
    end: datetime
    received: int
    by_class: dict[str, int]
    by_status: dict[str, int]
    closed: int  # of those received in the period, closed by now
    closed_in_time: int
    timeliness_rate: float | None  # closed in time / closed
    overdue: int  # of those received in the period, overdue now
    suggestions: int  # received in the period
    suggestions_answered: int  # of those, answered to the customer
    suggestions_adopted: int  # of those, adopted
    adoption_rate: float | None  # adopted / answered


async def monthly(
    conn: asyncpg.Connection, start: datetime, end: datetime, now: datetime
) -> MonthlyStats:
    """Complaints received in [start, end), by class and status; how many of them
    are closed, how many in time (their class's milestone met by the deadline),
    how many are overdue at `now`; and the suggestions of the period."""
    rows = await conn.fetch(
        """SELECT class, status, count(*) AS n,
                  count(*) FILTER (WHERE status = 'closed' AND met_at <= deadline_at) AS timely,
                  count(*) FILTER (WHERE status <> 'closed' AND met_at IS NULL
                                   AND deadline_at < $3) AS late
           FROM complaints WHERE received_at >= $1 AND received_at < $2
           GROUP BY class, status""",
        start, end, now,
    )  # fmt: skip
    by_class = {c.value: 0 for c in ComplaintClass}
    by_status = {s.value: 0 for s in Status}
    timely = late = 0
    for r in rows:
        by_class[r["class"]] += r["n"]
        by_status[r["status"]] += r["n"]
        timely += r["timely"]
        late += r["late"]
    closed = by_status[Status.CLOSED.value]
    s = await conn.fetchrow(
        "SELECT count(*) AS n, count(*) FILTER (WHERE status = 'answered') AS answered,"
        " count(*) FILTER (WHERE adopted) AS adopted FROM suggestions"
        " WHERE received_at >= $1 AND received_at < $2",
        start, end,
    )  # fmt: skip
    return MonthlyStats(
        start, end, sum(by_class.values()), by_class, by_status, closed, timely,
        timely / closed if closed else None, late, s["n"], s["answered"], s["adopted"],
        s["adopted"] / s["answered"] if s["answered"] else None,
    )  # fmt: skip
