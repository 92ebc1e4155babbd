"""The agent's call form (the service centre's standard record) and complaints.

What the SOP asks an agent to record (shared/SOP.md, 004 §1.4, 000 §4.2.1):
caller name, address, time of call, service requested, appointment time,
contact, special requests; for complaints the matter and when it happened;
whether satisfaction was asked and the score; whether the key points were
read back. A complaint gets a class and a deadline from the SOP (004
§3.6.5-3.7), and every complaint ends with a call-back to the complainant
(000 §4.2.4), so saving a complaint also books that call-back.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Literal

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "CallForm",
    "CallNotRecordedYet",
    "ComplaintClass",
    "FormRefused",
    "deadline_for",
    "save_form",
]


class ComplaintClass(enum.StrEnum):
    ORDINARY = "ordinary"  # prompt rework, repair or a concession
    SERIOUS = "serious"  # several departments, media, reputation, repeated, system defect
    INVALID = "invalid"  # a misunderstanding, unfounded, outside the company's remit
    VALID = "valid"  # attitude, procedure, facilities, materials, management of the area
    OTHER_UNIT = "other-unit"  # involves another unit


# SOP 004 §3.6.5-3.7: how long each class may take.
_DEADLINES = {
    ComplaintClass.INVALID: timedelta(days=1),  # contact the complainant to explain
    ComplaintClass.VALID: timedelta(days=3),  # cause, responsibility, handling record
    ComplaintClass.SERIOUS: timedelta(hours=48),  # a result
    ComplaintClass.OTHER_UNIT: timedelta(days=3),  # contact the complainant
    ComplaintClass.ORDINARY: timedelta(days=3),
}


def deadline_for(complaint_class: ComplaintClass, received: datetime) -> datetime:
    return received + _DEADLINES[complaint_class]


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
        for name in ("called_at", "appointment_at", "complaint_occurred_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValueError(f"{name} needs a time zone")
        return self


class FormRefused(ValueError):
    """A form the records will not store as it is: the agent must change it, not retry."""


class CallNotRecordedYet(Exception):
    """The form's call is not in the records yet (their writer follows the journal,
    and is behind after an outage): the form can be sent again in a moment."""


async def save_form(conn: asyncpg.Connection, form: CallForm, *, offered: bool = False) -> bool:
    """Store the form (and its complaint and call-back). False if it was already stored.

    A form about a call must be about a call offered to its agent: `offered` when
    the caller knows it was, else the records are asked. Raises `FormRefused` for a
    call that was not, and for values the database refuses (an unknown customer);
    `CallNotRecordedYet` for a call the records do not have yet.
    """
    try:
        return await _save_form(conn, form, offered)
    except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
        raise FormRefused(f"the records refused the form: {exc}") from exc


async def _save_form(conn: asyncpg.Connection, form: CallForm, offered: bool) -> bool:
    async with conn.transaction():
        if form.call_id is not None and not offered:
            offered = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM ring_attempts WHERE call_id = $1 AND agent_id = $2)",
                form.call_id, form.agent_id,
            )  # fmt: skip
            if not offered:
                if not await conn.fetchval(
                    "SELECT EXISTS (SELECT 1 FROM calls WHERE call_id = $1)", form.call_id
                ):  # not in the records yet (the writer may be behind): ask again later
                    raise CallNotRecordedYet(form.call_id)
                raise FormRefused(f"call {form.call_id} was not offered to {form.agent_id}")
        inserted = await conn.fetchval(
            """INSERT INTO call_forms (id, call_id, agent_id, customer_id, caller_name, address,
                   called_at, service_requested, appointment_at, contact, special_requests,
                   category, complaint_matter, complaint_occurred_at, satisfaction_asked,
                   satisfaction_score, read_back_done, notes)
               VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18)
               ON CONFLICT (id) DO NOTHING RETURNING true""",
            form.id, form.call_id, form.agent_id, form.customer_id, form.caller_name,
            form.address, form.called_at, form.service_requested, form.appointment_at,
            form.contact, form.special_requests, form.category, form.complaint_matter,
            form.complaint_occurred_at, form.satisfaction_asked, form.satisfaction_score,
            form.read_back_done, form.notes,
        )  # fmt: skip
        if not inserted:
            return False
        if form.category == "complaint":
            deadline = deadline_for(form.complaint_class, form.called_at)
            await conn.execute(
                "INSERT INTO complaints (form_id, customer_id, class, matter, occurred_at,"
                " deadline_at) VALUES ($1,$2,$3,$4,$5,$6)",
                form.id, form.customer_id, form.complaint_class.value, form.complaint_matter,
                form.complaint_occurred_at, deadline,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO follow_ups (form_id, customer_id, kind, due_at, notes)"
                " VALUES ($1, $2, 'call-back', $3, 'complaint call-back (SOP 004 §3.7.4)')",
                form.id, form.customer_id, deadline,
            )  # fmt: skip
    return True
