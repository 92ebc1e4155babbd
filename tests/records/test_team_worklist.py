"""A team leader's worklist is their team's (docs/complaints.md, "Teams"), on a real
database: complaints, suggestions and promised replies taken, reported or owned by
a member of the team; another team's are not listed and answer 404 to reading and
to every change; supervisors and QA see them all; a team leader without a team
sees their own intake only."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcenter.agent.auth import Sessions
from callcenter.agent.cases_api import CasesApi
from callcenter.agent.complaints_api import ComplaintsApi
from callcenter.records.forms import CallForm, save_form
from callcenter.records.migrate import apply_migrations

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
H = timedelta(hours=1)
# Staff: (id, role, team). Agents: a1 in "repairs", b1 in "billing".
STAFF = [
    ("lead_a", "team_leader", "repairs"), ("lead_b", "team_leader", "billing"),
    ("lead_none", "team_leader", None), ("sup", "supervisor", None), ("qa", "qa", None),
    ("clerk_b", "supervisor", "billing"),
]  # fmt: skip


@dataclass
class Floor:
    client: TestClient[Any, Any]
    tokens: dict[str, str]

    async def call(
        self, who: str, method: str, path: str, body: Any = None, **params: str
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"}
        r = await self.client.request(method, path, json=body, headers=headers, params=params)
        return r.status, await r.json()

    async def ids(self, who: str, path: str, **params: str) -> set[int]:
        status, listed = await self.call(who, "GET", path, **params)
        assert status == 200, listed
        return {row["id"] for row in listed}


@contextlib.asynccontextmanager
async def floor(database: str) -> AsyncIterator[tuple[Floor, asyncpg.Pool]]:
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    await pool.executemany(
        "INSERT INTO agents (id, name, number, extension, groups) VALUES ($1, $1, $2, $2, $3)",
        [("a1", "001", '{"repairs": 3}'), ("b1", "002", '{"billing": 2}')],
    )
    await pool.executemany(
        "INSERT INTO staff (id, name, role, team) VALUES ($1, $1, $2, $3)", STAFF
    )
    sessions = Sessions()
    tokens = {}
    for who, role, _ in STAFF:
        sessions.add_user(who, f"{who}-pw", role)
        tokens[who] = await sessions.login(who, f"{who}-pw", "127.0.0.1")

    async def get_pool() -> Any:
        return pool

    app = web.Application()
    for api in (ComplaintsApi, CasesApi):
        app.add_routes(api(sessions, pool=get_pool, now=lambda: T0 + H).routes())
    try:
        async with TestClient(TestServer(app)) as client:
            yield Floor(client, tokens), pool
    finally:
        await pool.close()


@dataclass
class Cases:
    complaint: dict[str, int]  # by whose it is: "a" (repairs), "b" (billing), "none"
    suggestion: dict[str, int]
    reply: dict[str, int]
    call_back: dict[str, int]


async def _cases(pool: asyncpg.Pool, f: Floor) -> Cases:
    async with pool.acquire() as conn:
        for form, agent, category in [
            ("form-a-complaint", "a1", "complaint"), ("form-b-complaint", "b1", "complaint"),
            ("form-a-suggestion", "a1", "suggestion"), ("form-b-suggestion", "b1", "suggestion"),
        ]:  # fmt: skip
            await save_form(conn, CallForm(
                id=form, agent_id=agent, category=category, called_at=T0,
                complaint_matter="the lift" if category == "complaint" else None,
                service_requested="open earlier" if category == "suggestion" else None,
                promise_due_at=T0 + 24 * H if category == "complaint" else None,
                promise_text="we will call" if category == "complaint" else None,
            ), offered=True)  # fmt: skip
        by_form = {r["form_id"]: r["id"] for r in await conn.fetch(
            "SELECT form_id, id FROM complaints UNION ALL SELECT form_id, id FROM suggestions"
        )}  # fmt: skip
        replies = {r["form_id"]: r["id"] for r in await conn.fetch(
            "SELECT form_id, id FROM follow_ups WHERE kind = 'reply'"
        )}  # fmt: skip
    # The team-less leader's own intake, and a supervisor's given to a billing agent.
    status, own = await f.call("lead_none", "POST", "/api/complaints", {"matter": "noise"})
    assert status == 201
    status, given = await f.call("sup", "POST", "/api/complaints", {"matter": "a bill"})
    assert status == 201
    assert (await f.call("sup", "POST", f"/api/complaints/{given['id']}/assign",
                         {"owner": "b1"}))[0] == 200  # fmt: skip
    status, sug = await f.call("lead_none", "POST", "/api/suggestions", {"text": "more chairs"})
    assert status == 201
    complaint = {
        "a": by_form["form-a-complaint"], "b": by_form["form-b-complaint"],
        "none": own["id"], "b-owned": given["id"],
    }  # fmt: skip
    async with pool.acquire() as conn:
        call_back = {k: await conn.fetchval(
            "SELECT id FROM follow_ups WHERE complaint_id = $1", v
        ) for k, v in complaint.items()}  # fmt: skip
    return Cases(
        complaint,
        {"a": by_form["form-a-suggestion"], "b": by_form["form-b-suggestion"], "none": sug["id"]},
        {"a": replies["form-a-complaint"], "b": replies["form-b-complaint"]},
        call_back,
    )


@pytest.fixture
async def running(database: str) -> AsyncIterator[tuple[Floor, Cases]]:
    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    await conn.close()
    async with floor(database) as (f, pool):
        yield f, await _cases(pool, f)


async def test_a_team_leader_sees_their_teams_cases_and_supervisors_and_qa_see_all(
    running: tuple[Floor, Cases],
) -> None:
    f, c = running
    every_complaint = set(c.complaint.values())
    for who in ("sup", "qa", "clerk_b"):  # a supervisor's team narrows nothing
        assert await f.ids(who, "/api/complaints") == every_complaint
        assert await f.ids(who, "/api/suggestions") == set(c.suggestion.values())
        listed = await f.ids(who, "/api/follow-ups")
        assert listed == set(c.reply.values()) | set(c.call_back.values())
    # Taken by a team's agent (the form), or owned by one (assigned).
    assert await f.ids("lead_a", "/api/complaints") == {c.complaint["a"]}
    assert await f.ids("lead_b", "/api/complaints") == {c.complaint["b"], c.complaint["b-owned"]}
    assert await f.ids("lead_b", "/api/complaints", open="true") == {
        c.complaint["b"], c.complaint["b-owned"],
    }  # fmt: skip
    assert await f.ids("lead_a", "/api/suggestions") == {c.suggestion["a"]}
    assert await f.ids("lead_a", "/api/follow-ups") == {c.reply["a"], c.call_back["a"]}
    assert await f.ids("lead_b", "/api/follow-ups", kind="call-back") == {
        c.call_back["b"], c.call_back["b-owned"],
    }  # fmt: skip
    # No team: their own intake only.
    assert await f.ids("lead_none", "/api/complaints") == {c.complaint["none"]}
    assert await f.ids("lead_none", "/api/suggestions") == {c.suggestion["none"]}
    assert await f.ids("lead_none", "/api/follow-ups") == {c.call_back["none"]}


async def test_another_teams_case_is_not_there_for_a_team_leader_to_read_or_change(
    running: tuple[Floor, Cases],
) -> None:
    f, c = running
    b = f"/api/complaints/{c.complaint['b']}"
    status, got = await f.call("lead_a", "GET", b)
    assert status == 404 and got == {"error": f"no complaint {c.complaint['b']}"}
    for change, body in [
        ("assign", {"owner": "lead_a"}), ("classify", {"complaint_class": "invalid"}),
        ("investigation", {"findings": "none"}), ("call-back", {"reached": True}),
        ("close", {}),
    ]:  # fmt: skip
        assert (await f.call("lead_a", "POST", f"{b}/{change}", body))[0] == 404, change
    sb, rb = f"/api/suggestions/{c.suggestion['b']}", f"/api/follow-ups/{c.reply['b']}"
    assert (await f.call("lead_a", "GET", sb))[0] == 404
    assert (await f.call("lead_a", "POST", f"{sb}/assess",
                         {"feasible": True, "valuable": True}))[0] == 404  # fmt: skip
    assert (await f.call("lead_a", "GET", rb))[0] == 404
    assert (await f.call("lead_a", "POST", f"{rb}/reply", {}))[0] == 404
    # Nothing was changed: the supervisor sees them as they were.
    status, got = await f.call("sup", "GET", b)
    assert (got["status"], got["owner"], [h["action"] for h in got["history"]]) == (
        "received", None, ["receive"],
    )  # fmt: skip
    assert (await f.call("sup", "GET", rb))[1]["status"] == "open"
    assert (await f.call("sup", "GET", sb))[1]["status"] == "recorded"
    # Their own team's they read and change; the other team's leader can too.
    a = f"/api/complaints/{c.complaint['a']}"
    assert (await f.call("lead_a", "GET", a))[0] == 200
    status, got = await f.call("lead_a", "POST", f"{a}/classify", {"complaint_class": "valid"})
    assert (status, got["status"]) == (200, "classified")
    assert (await f.call("lead_b", "POST", f"{b}/assign", {"owner": "lead_b"}))[0] == 200
    assert (await f.call("lead_a", "POST", f"/api/follow-ups/{c.reply['a']}/reply", {}))[0] == 200
    # A supervisor changes any team's.
    assert (await f.call("sup", "POST", f"{sb}/assess",
                         {"feasible": True, "valuable": False}))[0] == 200  # fmt: skip


async def test_a_team_is_read_when_asked_a_new_team_counts_at_once(
    running: tuple[Floor, Cases], database: str
) -> None:
    f, c = running
    conn = await asyncpg.connect(database)
    try:
        await conn.execute("UPDATE staff SET team = 'billing' WHERE id = 'lead_a'")
        assert await f.ids("lead_a", "/api/complaints") == {
            c.complaint["b"], c.complaint["b-owned"],
        }  # fmt: skip
        await conn.execute("UPDATE staff SET team = NULL WHERE id = 'lead_a'")
        assert await f.ids("lead_a", "/api/complaints") == set()
        status, _ = await f.call("lead_a", "GET", f"/api/complaints/{c.complaint['a']}")
        assert status == 404
    finally:
        await conn.close()
