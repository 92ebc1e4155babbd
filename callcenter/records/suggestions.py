"""Suggestions and promised replies in the records (issue 18): recorded, worked
through `casework.suggestions`' tables, every change in `case_events`.

As `records.complaints`: a change locks the row, applies the pure rule to what
is stored, and writes the result and its history row in one transaction.
A follow-up of kind `call-back` belongs to its complaint and is done by the
complaint's call-back, so only promised replies (kind `reply`) are changed here.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import asyncpg

from callcenter.casework.suggestions import (
    CaseRefused,
    FollowUp,
    FollowUpInput,
    FollowUpStatus,
    Suggestion,
    SuggestionInput,
    SuggestionStatus,
    apply_follow_up,
    apply_suggestion,
    follow_up_kind,
    suggestion_kind,
)

from .complaints import ComplaintEvent, events_of
from .teams import Scope, follow_up_in, suggestion_in

__all__ = [
    "CaseEvent",
    "NoSuchCase",
    "StoredFollowUp",
    "StoredSuggestion",
    "case_history",
    "change_follow_up",
    "change_suggestion",
    "follow_up",
    "receive_suggestion",
    "search_follow_ups",
    "search_suggestions",
    "suggestion",
]


class NoSuchCase(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class StoredSuggestion:
    id: int
    form_id: str | None
    customer_id: int | None
    text: str
    suggester: str | None
    contact: str | None
    reported_by: str
    updated_at: datetime
    work: Suggestion


@dataclass(frozen=True, slots=True)
class StoredFollowUp:
    id: int
    kind: str  # call-back (a complaint's) or reply (a promise)
    form_id: str | None
    complaint_id: int | None
    customer_id: int | None
    notes: str | None
    done_by: str | None
    work: FollowUp


#: A change in a case's history: the same as a complaint's.
CaseEvent = ComplaintEvent


_S_COLUMNS = (
    "id, form_id, customer_id, text, suggester, contact, reported_by, updated_at, status,"
    " received_at, feasible, valuable, forwarded_to, adopted, answer, answered_at"
)


def _suggestion(r: asyncpg.Record) -> StoredSuggestion:
    work = Suggestion(
        SuggestionStatus(r["status"]), r["received_at"], r["feasible"], r["valuable"],
        r["forwarded_to"], r["adopted"], r["answer"], r["answered_at"],
    )  # fmt: skip
    return StoredSuggestion(
        r["id"], r["form_id"], r["customer_id"], r["text"], r["suggester"], r["contact"],
        r["reported_by"], r["updated_at"], work,
    )  # fmt: skip


async def receive_suggestion(
    conn: asyncpg.Connection,
    *,
    text: str,
    received_at: datetime,
    reported_by: str,
    customer_id: int | None = None,
    form_id: str | None = None,
    suggester: str | None = None,
    contact: str | None = None,
) -> int:
    """Record a suggestion (from a form, or any staff member) and its first history row."""
    async with conn.transaction():
        sid: int = await conn.fetchval(
            "INSERT INTO suggestions (form_id, customer_id, text, suggester, contact,"
            " reported_by, received_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$7)"
            " RETURNING id",
            form_id, customer_id, text, suggester, contact, reported_by, received_at,
        )  # fmt: skip
        await _event(
            conn, "suggestion", sid, received_at, reported_by, "receive", None,
            SuggestionStatus.RECORDED.value, {},
        )  # fmt: skip
    return sid


async def suggestion(conn: asyncpg.Connection, sid: int) -> StoredSuggestion | None:
    row = await conn.fetchrow(f"SELECT {_S_COLUMNS} FROM suggestions WHERE id = $1", sid)
    return None if row is None else _suggestion(row)


async def change_suggestion(
    conn: asyncpg.Connection, sid: int, change: SuggestionInput, actor: str, now: datetime
) -> StoredSuggestion:
    """Apply `change`; `NoSuchCase`, or `CaseRefused` (nothing stored)."""
    async with conn.transaction():
        row = await conn.fetchrow(
            f"SELECT {_S_COLUMNS} FROM suggestions WHERE id = $1 FOR UPDATE", sid
        )
        if row is None:
            raise NoSuchCase(sid)
        before = _suggestion(row)
        w = apply_suggestion(before.work, change, now)
        await conn.execute(
            "UPDATE suggestions SET status = $2, feasible = $3, valuable = $4,"
            " forwarded_to = $5, adopted = $6, answer = $7, answered_at = $8, updated_at = $9"
            " WHERE id = $1",
            sid, w.status.value, w.feasible, w.valuable, w.forwarded_to, w.adopted, w.answer,
            w.answered_at, now,
        )  # fmt: skip
        await _event(
            conn, "suggestion", sid, now, actor, suggestion_kind(change).value,
            before.work.status.value, w.status.value, asdict(change),
        )  # fmt: skip
    stored = await suggestion(conn, sid)
    assert stored is not None
    return stored


async def search_suggestions(
    conn: asyncpg.Connection,
    *,
    status: SuggestionStatus | None = None,
    limit: int = 100,
    offset: int = 0,
    scope: Scope | None = None,
) -> list[StoredSuggestion]:
    """Suggestions, the oldest first; `scope`: those it lets through (None: all)."""
    rows = await conn.fetch(
        f"SELECT {_S_COLUMNS} FROM suggestions WHERE ($1::text IS NULL OR status = $1)"
        f" AND {suggestion_in('suggestions', '$4', '$5')}"
        " ORDER BY received_at, id LIMIT $2 OFFSET $3",
        None if status is None else status.value, limit, offset,
        None if scope is None else scope.user, None if scope is None else scope.team,
    )  # fmt: skip
    return [_suggestion(r) for r in rows]


_F_COLUMNS = "id, kind, form_id, complaint_id, customer_id, notes, done_by, due_at, owner, done_at"


def _follow_up(r: asyncpg.Record) -> StoredFollowUp:
    status = FollowUpStatus.OPEN if r["done_at"] is None else FollowUpStatus.DONE
    return StoredFollowUp(
        r["id"], r["kind"], r["form_id"], r["complaint_id"], r["customer_id"], r["notes"],
        r["done_by"], FollowUp(status, r["due_at"], r["owner"], r["done_at"]),
    )  # fmt: skip


async def follow_up(conn: asyncpg.Connection, fid: int) -> StoredFollowUp | None:
    row = await conn.fetchrow(f"SELECT {_F_COLUMNS} FROM follow_ups WHERE id = $1", fid)
    return None if row is None else _follow_up(row)


async def change_follow_up(
    conn: asyncpg.Connection, fid: int, change: FollowUpInput, actor: str, now: datetime
) -> StoredFollowUp:
    """Apply `change` to a promised reply; `NoSuchCase`, or `CaseRefused` (for a
    complaint's call-back too: its complaint's call-back does it)."""
    async with conn.transaction():
        row = await conn.fetchrow(
            f"SELECT {_F_COLUMNS} FROM follow_ups WHERE id = $1 FOR UPDATE", fid
        )
        if row is None:
            raise NoSuchCase(fid)
        before = _follow_up(row)
        if before.kind != "reply":
            raise CaseRefused(
                f"follow-up {fid} is complaint {before.complaint_id}'s call-back: record the"
                " call-back on the complaint"
            )
        w = apply_follow_up(before.work, change, now)
        await conn.execute(
            "UPDATE follow_ups SET due_at = $2, owner = $3, done_at = $4,"
            " done_by = CASE WHEN $4::timestamptz IS NOT NULL AND done_by IS NULL"
            " THEN $5 ELSE done_by END WHERE id = $1",
            fid, w.due_at, w.owner, w.done_at, actor,
        )  # fmt: skip
        await _event(
            conn, "follow-up", fid, now, actor, follow_up_kind(change).value,
            before.work.status.value, w.status.value, asdict(change),
        )  # fmt: skip
    stored = await follow_up(conn, fid)
    assert stored is not None
    return stored


async def search_follow_ups(
    conn: asyncpg.Connection,
    now: datetime,
    *,
    kind: str | None = None,
    owner: str | None = None,
    open_only: bool = False,
    overdue: bool | None = None,
    limit: int = 100,
    offset: int = 0,
    scope: Scope | None = None,
) -> list[StoredFollowUp]:
    """Follow-ups by due time (the soonest first); `overdue`: open and past due at `now`;
    `scope`: those it lets through (None: all)."""
    rows = await conn.fetch(
        f"""SELECT {_F_COLUMNS} FROM follow_ups
            WHERE ($1::text IS NULL OR kind = $1) AND ($2::text IS NULL OR owner = $2)
              AND (NOT $3 OR done_at IS NULL)
              AND ($4::boolean IS NULL OR $4 = (done_at IS NULL AND due_at < $5))
              AND {follow_up_in("follow_ups", "$8", "$9")}
            ORDER BY due_at, id LIMIT $6 OFFSET $7""",
        kind, owner, open_only, overdue, now, limit, offset,
        None if scope is None else scope.user, None if scope is None else scope.team,
    )  # fmt: skip
    return [_follow_up(r) for r in rows]


async def case_history(conn: asyncpg.Connection, case_kind: str, case_id: int) -> list[CaseEvent]:
    rows = await conn.fetch(
        "SELECT at, actor, action, from_status, to_status, details FROM case_events"
        " WHERE case_kind = $1 AND case_id = $2 ORDER BY id",
        case_kind, case_id,
    )  # fmt: skip
    return events_of(rows)


async def _event(
    conn: asyncpg.Connection,
    case_kind: str,
    case_id: int,
    at: datetime,
    actor: str,
    action: str,
    before: str | None,
    after: str,
    details: dict[str, Any],
) -> None:
    await conn.execute(
        "INSERT INTO case_events (case_kind, case_id, at, actor, action, from_status,"
        " to_status, details) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)",
        case_kind, case_id, at, actor, action, before, after,
        json.dumps(details, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)),
    )  # fmt: skip
