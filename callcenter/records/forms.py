"""The agent's call form (the service centre's standard record) and complaints.

What the SOP asks an agent to record (shared/SOP.md, 004 §1.4, 000 §4.2.1):
caller name, address, time of call, service requested, appointment time,
contact, special requests; for complaints the matter and when it happened;
whether satisfaction was asked and the score; whether the key points were
read back. A complaint gets a class and a deadline from the SOP (004
§3.6.5-3.7), and every complaint ends with a call-back to the complainant
(000 §4.2.4), so saving a complaint also books that call-back. A promise
to reply by a given time ("we will reply by ...", 000 §4.1.2) becomes a
follow-up of kind `reply`.

A record about a call is filed under the caller: the customer is found from
the call's number (E.164), and a caller with no customer becomes one on the
first saved record, with the name and address of the record, in the same
transaction as the record (docs/desktop.md, "The call's record").

`pending_records` lists the calls an agent answered that have no record of
theirs yet (the desktop's `hello.records_pending`, the agent's own day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from callcenter.casework.complaints import ComplaintClass, deadline_for

from .complaints import receive_complaint
from .numbers import valid_number
from .suggestions import receive_suggestion

__all__ = [
    "RECORD_SAVED",
    "CallForm",
    "CallNotRecordedYet",
    "ComplaintClass",
    "FormRefused",
    "PendingRecord",
    "SavedForm",
    "deadline_for",
    "pending_records",
    "save_form",
]


class CallForm(BaseModel):
    """The form as the desktop submits it; validated before anything is stored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    call_id: str | None = Field(default=None, max_length=300)
    agent_id: str = Field(min_length=1, max_length=64)
    customer_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    caller_name: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=500)
    called_at: datetime
    service_requested: str | None = Field(default=None, max_length=2000)
    appointment_at: datetime | None = None
    contact: str | None = Field(default=None, max_length=200)
    special_requests: str | None = Field(default=None, max_length=2000)
    category: Literal["inquiry", "complaint", "suggestion", "repair", "other"]
    complaint_matter: str | None = Field(default=None, max_length=4000)
    complaint_occurred_at: datetime | None = None
    complaint_class: ComplaintClass = ComplaintClass.ORDINARY
    satisfaction_asked: bool = False
    satisfaction_score: int | None = Field(default=None, ge=1, le=5)
    read_back_done: bool = False
    notes: str | None = Field(default=None, max_length=4000)
    # "We will reply by ..." (000 §4.1.2): a tracked follow-up of kind `reply`.
    promise_due_at: datetime | None = None
    promise_text: str | None = Field(default=None, max_length=2000)

    @field_validator("*", mode="after")
    @classmethod
    def _text(cls, value: object) -> object:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("a NUL byte is not text")
        return value

    @model_validator(mode="after")
    def _complaint_fields(self) -> CallForm:
        if self.category == "complaint" and not self.complaint_matter:
            raise ValueError("a complaint needs the complainant's matter")
        if self.satisfaction_score is not None and not self.satisfaction_asked:
            raise ValueError("a satisfaction score needs satisfaction_asked")
        if self.promise_text and self.promise_due_at is None:
            raise ValueError("a promise needs promise_due_at, when the reply is due")
        for name in ("called_at", "appointment_at", "complaint_occurred_at", "promise_due_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone")
        return self


class FormRefused(ValueError):
    """A form the records will not store as it is: the agent must change it, not retry."""


class CallNotRecordedYet(Exception):
    """The form's call is not in the records yet (their writer follows the journal,
    and is behind after an outage): the form can be sent again in a moment."""


@dataclass(frozen=True, slots=True)
class SavedForm:
    """What saving a form did: `stored` (False: stored before, the same form id),
    the customer it is filed under (created if the caller was unknown), the
    promised reply's follow-up, and the numbers whose look-ups are stale now (the
    caller's and the customer's)."""

    stored: bool
    customer_id: int | None
    follow_up_id: int | None
    numbers: tuple[str, ...] = ()


async def save_form(
    conn: asyncpg.Connection,
    form: CallForm,
    *,
    offered: bool = False,
    caller: str | None = None,
    region: str = "CN",
) -> SavedForm:
    """Store the form (its complaint, call-back and promised reply), filed under
    the call's caller.

    A form about a call must be about a call offered to its agent: `offered` when
    the caller knows it was, else the records are asked. Its customer is the
    call's caller's (`caller`, the number the call came from, when known, else
    the call's in the records), whatever the form says; a caller with a valid
    number and no customer becomes one, with the record's name and address. A
    form about no call keeps its `customer_id`. Raises `FormRefused` for a call
    that was not offered to the agent, and for values the database refuses (an
    unknown customer); `CallNotRecordedYet` for a call the records do not have yet.
    """
    try:
        return await _save_form(conn, form, offered, caller, region)
    except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
        raise FormRefused(f"the records refused the form: {exc}") from exc


async def _save_form(
    conn: asyncpg.Connection, form: CallForm, offered: bool, caller: str | None, region: str
) -> SavedForm:
    async with conn.transaction():
        done = await conn.fetchrow(
            "SELECT customer_id, (SELECT id FROM follow_ups WHERE form_id = $1 AND kind = 'reply')"
            " AS follow_up_id, agent_id FROM call_forms WHERE id = $1",
            form.id,
        )
        if done is not None:  # sent again: stored once
            if done["agent_id"] != form.agent_id:
                raise FormRefused(f"form id {form.id} is taken: make a new one")
            return SavedForm(False, done["customer_id"], done["follow_up_id"])
        customer_id = form.customer_id
        if form.call_id is not None:
            call = await conn.fetchrow(
                "SELECT caller, EXISTS (SELECT 1 FROM ring_attempts WHERE call_id = $1"
                " AND agent_id = $2) AS offered FROM calls WHERE call_id = $1",
                form.call_id, form.agent_id,
            )  # fmt: skip
            if call is None and not (offered and caller is not None):
                # Not in the records yet (the writer may be behind): ask again later.
                raise CallNotRecordedYet(form.call_id)
            if not offered and not call["offered"]:
                raise FormRefused(f"call {form.call_id} was not offered to {form.agent_id}")
            caller = caller if caller is not None else call["caller"]
            assert caller is not None
            customer_id = await _customer_of(conn, caller, form, region)
        inserted = await conn.fetchval(
            """INSERT INTO call_forms (id, call_id, agent_id, customer_id, caller_name, address,
                   called_at, service_requested, appointment_at, contact, special_requests,
                   category, complaint_matter, complaint_occurred_at, satisfaction_asked,
                   satisfaction_score, read_back_done, notes)
               VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18)
               ON CONFLICT (id) DO NOTHING RETURNING true""",
            form.id, form.call_id, form.agent_id, customer_id, form.caller_name,
            form.address, form.called_at, form.service_requested, form.appointment_at,
            form.contact, form.special_requests, form.category, form.complaint_matter,
            form.complaint_occurred_at, form.satisfaction_asked, form.satisfaction_score,
            form.read_back_done, form.notes,
        )  # fmt: skip
        if not inserted:  # saved meanwhile: sent twice at once, or another agent's id
            done = await conn.fetchrow(
                "SELECT customer_id, agent_id FROM call_forms WHERE id = $1", form.id
            )
            if done is None or done["agent_id"] != form.agent_id:
                raise FormRefused(f"form id {form.id} is taken: make a new one")
            reply = await conn.fetchval(
                "SELECT id FROM follow_ups WHERE form_id = $1 AND kind = 'reply'", form.id
            )
            return SavedForm(False, done["customer_id"], reply)
        if form.category == "complaint":
            assert form.complaint_matter is not None  # the model's validator
            await receive_complaint(
                conn, matter=form.complaint_matter, occurred_at=form.complaint_occurred_at,
                received_at=form.called_at, complaint_class=form.complaint_class,
                reported_by=form.agent_id, customer_id=customer_id, form_id=form.id,
                complainant=form.caller_name, contact=form.contact,
            )  # fmt: skip
        if form.category == "suggestion":
            await receive_suggestion(
                conn, text=(form.service_requested or form.notes or "-")[:4000],
                received_at=form.called_at, reported_by=form.agent_id, customer_id=customer_id,
                form_id=form.id, suggester=form.caller_name, contact=form.contact,
            )  # fmt: skip
        follow_up_id = None
        if form.promise_due_at is not None:
            follow_up_id = await conn.fetchval(
                "INSERT INTO follow_ups (form_id, customer_id, kind, due_at, notes)"
                " VALUES ($1, $2, 'reply', $3, $4) RETURNING id",
                form.id, customer_id, form.promise_due_at, form.promise_text,
            )  # fmt: skip
        numbers: list[str] = [] if caller is None else [caller]
        if customer_id is not None:
            numbers += await conn.fetchval(
                "SELECT array(SELECT number FROM customer_numbers WHERE customer_id = $1)",
                customer_id,
            )
    return SavedForm(True, customer_id, follow_up_id, tuple(numbers))


async def _customer_of(
    conn: asyncpg.Connection, caller: str, form: CallForm, region: str
) -> int | None:
    """The caller's customer; a new one (the record's name and address) for a valid
    number not on file. None for a number that is no customer's (withheld, internal)."""
    number = valid_number(caller, region)
    if number is None:
        return None
    # Two records of one new caller saved at once make one customer, not a refusal.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('customer:' || $1))", number)
    found: int | None = await conn.fetchval(
        "SELECT customer_id FROM customer_numbers WHERE number = $1", number
    )
    if found is not None:
        return found
    created: int = await conn.fetchval(
        "INSERT INTO customers (name, address) VALUES ($1, $2) RETURNING id",
        (form.caller_name or number)[:200], form.address,
    )  # fmt: skip
    await conn.execute(
        "INSERT INTO customer_numbers (number, customer_id) VALUES ($1, $2)", number, created
    )
    return created


#: Whether the agent of ring attempt ``r`` saved a record of its call (SQL): what
#: `pending_records` and the agent's day (stats.agent_day) both ask.
RECORD_SAVED = (
    "EXISTS (SELECT 1 FROM call_forms f WHERE f.call_id = r.call_id AND f.agent_id = r.agent_id)"
)


@dataclass(frozen=True, slots=True)
class PendingRecord:
    """A call the agent answered that has no record of theirs yet."""

    call_id: str
    queue: str
    caller: str
    caller_name: str | None
    answered_at: datetime  # the agent's answer
    ended_at: datetime | None  # the call's end (None: still going on)


async def pending_records(
    conn: asyncpg.Connection, agent_id: str, since: datetime, limit: int = 100
) -> list[PendingRecord]:
    """The calls `agent_id` answered since `since` without a record of theirs, oldest
    first (at most `limit`, the oldest). A call transferred away counts for each
    agent who answered it; an abandon, a missed ring or a short abandon was not answered."""
    rows = await conn.fetch(
        f"""SELECT c.call_id, c.queue, c.caller, c.caller_name, r.ended_at AS answered_at,
                  c.ended_at
           FROM ring_attempts r JOIN calls c ON c.call_id = r.call_id
           WHERE r.agent_id = $1 AND r.offered_at >= $2 AND r.outcome = 'answered'
             AND NOT {RECORD_SAVED}
           ORDER BY r.ended_at, c.call_id LIMIT $3""",
        agent_id, since, limit,
    )  # fmt: skip
    seen: set[str] = set()
    pending = []
    for row in rows:  # one entry per call, its first answer by this agent
        if row["call_id"] not in seen:
            seen.add(row["call_id"])
            pending.append(PendingRecord(**dict(row)))
    return pending
