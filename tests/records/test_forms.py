"""The call form: validation, storage, complaints with their SOP deadline and call-back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from pydantic import ValidationError

from callcenter.records.customers import CustomerDirectory, import_customers
from callcenter.records.forms import CallForm, ComplaintClass, deadline_for, save_form
from callcenter.records.migrate import apply_migrations

NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


def form(**kw: object) -> CallForm:
    base: dict[str, object] = {
        "id": "form-0001",
        "call_id": "c1@pbx",
        "agent_id": "a001",
        "caller_name": "Li Lei",
        "called_at": NOW,
        "category": "repair",
        "service_requested": "water leak under the sink",
        "appointment_at": NOW + timedelta(days=1),
        "contact": "13812345678",
        "read_back_done": True,
        "satisfaction_asked": True,
        "satisfaction_score": 5,
    }
    return CallForm(**{**base, **kw})


@pytest.mark.parametrize(
    ("cls", "hours"),
    [
        (ComplaintClass.INVALID, 24),
        (ComplaintClass.VALID, 72),
        (ComplaintClass.SERIOUS, 48),
        (ComplaintClass.OTHER_UNIT, 72),
    ],
)
def test_complaint_deadlines_follow_the_sop(cls: ComplaintClass, hours: int) -> None:
    assert deadline_for(cls, NOW) == NOW + timedelta(hours=hours)


def test_form_validation_names_the_problem() -> None:
    with pytest.raises(ValidationError, match="matter"):
        form(category="complaint")
    with pytest.raises(ValidationError, match="satisfaction_asked"):
        form(satisfaction_asked=False)
    with pytest.raises(ValidationError):
        form(category="gossip")
    with pytest.raises(ValidationError):
        form(notes="x" * 4001)
    with pytest.raises(ValidationError, match="time zone"):
        form(called_at=datetime(2026, 11, 23, 9, 30))
    with pytest.raises(ValidationError):
        form(unexpected="field")


async def test_saving_a_complaint_books_its_deadline_and_call_back_once(database: str) -> None:
    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    try:
        await import_customers(conn, "name,numbers\nLi Lei,13812345678\n")
        cid = await conn.fetchval("SELECT id FROM customers")
        complaint = form(
            id="form-0002", category="complaint", customer_id=cid,
            complaint_matter="repair man was rude", complaint_occurred_at=NOW - timedelta(days=2),
            complaint_class=ComplaintClass.SERIOUS,
        )  # fmt: skip
        assert await save_form(conn, form(customer_id=cid), offered=True) is True
        assert await save_form(conn, complaint, offered=True) is True
        assert await save_form(conn, complaint, offered=True) is False  # retried: stored once
        row = await conn.fetchrow("SELECT * FROM complaints")
        assert (row["class"], row["status"], row["deadline_at"]) == (
            "serious",
            "open",
            NOW + timedelta(hours=48),
        )
        assert await conn.fetchval("SELECT count(*) FROM call_forms") == 2
        pool = await asyncpg.create_pool(database, min_size=1, max_size=1)
        found = await CustomerDirectory(pool).lookup("+86 138 1234 5678")
        await pool.close()
        assert found is not None
        assert [c["matter"] for c in found.open_complaints] == ["repair man was rude"]
        assert [(f["kind"], f["due_at"]) for f in found.follow_ups] == [
            ("call-back", NOW + timedelta(hours=48))
        ]
    finally:
        await conn.close()


async def test_a_form_the_records_refuse_is_refused_not_retried(database: str) -> None:
    from callcenter.records.forms import FormRefused

    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    try:
        # The desktop does not know the call: the records say whether it was this agent's,
        # and a call they do not have yet (their writer is behind) is asked again later.
        from callcenter.records.forms import CallNotRecordedYet

        with pytest.raises(CallNotRecordedYet):
            await save_form(conn, form(id="form-0010"))
        await conn.execute(
            "INSERT INTO calls (call_id, queue, caller, arrived_at)"
            " VALUES ('c1@pbx', 'hotline', '+8613812345678', now())"
        )
        await conn.execute(
            "INSERT INTO ring_attempts (leg_id, call_id, agent_id, offered_at)"
            " VALUES ('l1', 'c1@pbx', 'a002', now())"
        )
        with pytest.raises(FormRefused, match="not offered to a001"):  # another agent's call
            await save_form(conn, form(id="form-0011"))
        assert await save_form(conn, form(id="form-0012", agent_id="a002")) is True
        with pytest.raises(FormRefused, match="customer"):  # no such customer
            await save_form(conn, form(id="form-0013", customer_id=424242), offered=True)
        assert await conn.fetchval("SELECT count(*) FROM call_forms") == 1
    finally:
        await conn.close()


def test_a_nul_byte_or_an_impossible_customer_is_invalid() -> None:
    with pytest.raises(ValidationError, match="NUL"):
        form(notes="before\x00after")
    with pytest.raises(ValidationError):
        form(customer_id=2**63)
