"""The suggestions and promised replies API on a real database and a fake wall
clock: intake by any staff member, a supervisor assessing, forwarding and
answering, a promised reply owned, moved and given, roles and refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from callcenter.agent.cases_api import CasesApi
from callcenter.records.forms import CallForm, save_form
from callcenter.records.migrate import apply_migrations
from tests.records.test_complaints_api import Api, serving

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
H = timedelta(hours=1)


@pytest.fixture
async def api(database: str) -> AsyncIterator[Api]:
    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    await save_form(conn, CallForm(
        id="form-0001", agent_id="a001", category="inquiry", called_at=T0,
        promise_due_at=T0 + 24 * H, promise_text="the repair's price",
    ), offered=True)  # fmt: skip
    await conn.close()
    async with serving(database, CasesApi) as running:
        yield running


async def test_a_suggestion_recorded_by_staff_assessed_forwarded_and_adopted(api: Api) -> None:
    status, made = await api.call(
        "POST", "/api/suggestions", {"text": "open the east gate at six", "suggester": "Han"},
        who="agent",
    )  # fmt: skip
    assert status == 201 and (made["status"], made["reported_by"]) == ("recorded", "a001")
    one = f"/api/suggestions/{made['id']}"
    status, refused = await api.call("POST", f"{one}/forward", {"to": "security"})
    assert status == 409 and "recorded" in refused["error"]
    await api.call("POST", f"{one}/assess", {"feasible": True, "valuable": True})
    await api.call("POST", f"{one}/forward", {"to": "security"})
    api.clock[0] = T0 + 30 * H
    status, done = await api.call(
        "POST", f"{one}/answer", {"adopted": True, "answer": "from Monday"}
    )
    assert status == 200
    assert (done["status"], done["adopted"], done["answered_at"]) == (
        "answered", True, (T0 + 30 * H).isoformat(),
    )  # fmt: skip
    assert [h["action"] for h in done["history"]] == ["receive", "assess", "forward", "answer"]
    status, listed = await api.call("GET", "/api/suggestions", status="answered")
    assert [s["id"] for s in listed] == [made["id"]]
    assert (await api.call("GET", "/api/suggestions", who="agent"))[0] == 403
    assert (await api.call("GET", "/api/suggestions/77"))[0] == 404
    status, error = await api.call("POST", "/api/suggestions", {"text": ""})
    assert status == 400 and "text" in error["error"]
    status, error = await api.call("GET", "/api/suggestions", stauts="answered")
    assert status == 400 and "stauts" in error["error"]


async def test_a_promised_reply_owned_moved_and_given(api: Api) -> None:
    api.clock[0] = T0 + 25 * H
    status, late = await api.call("GET", "/api/follow-ups", overdue="true")
    assert status == 200 and [(f["kind"], f["notes"], f["overdue"]) for f in late] == [
        ("reply", "the repair's price", True),
    ]  # fmt: skip
    one = f"/api/follow-ups/{late[0]['id']}"
    await api.call("POST", f"{one}/assign", {"owner": "li"})
    status, moved = await api.call(
        "POST", f"{one}/reschedule", {"due_at": "2026-03-04T09:00:00+08:00", "reason": "supplier"}
    )
    assert (status, moved["due_at"], moved["overdue"], moved["owner"]) == (
        200, "2026-03-04T01:00:00+00:00", False, "li",
    )  # fmt: skip
    assert (await api.call("GET", "/api/follow-ups", overdue="true"))[1] == []
    status, done = await api.call("POST", f"{one}/reply", {"notes": "80 yuan"})
    assert (done["status"], done["done_by"]) == ("done", "sup")
    assert [h["action"] for h in done["history"]] == ["assign", "reschedule", "reply"]
    status, again = await api.call("POST", f"{one}/reply", {})
    assert status == 409 and "done" in again["error"]
    assert (await api.call("GET", "/api/follow-ups", open="true"))[1] == []
    status, error = await api.call(
        "POST", f"{one}/reschedule", {"due_at": "2026-03-04T09:00:00", "reason": "x"}
    )
    assert status == 400 and "due_at" in error["error"]
