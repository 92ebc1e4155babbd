"""The complaints API on a real database and a fake wall clock: intake by any
staff member, a supervisor working a complaint to its close, the filters, the
roles, the month's figures and the refusals."""

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
from callcenter.agent.complaints_api import ComplaintsApi
from callcenter.records.migrate import apply_migrations

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
H = timedelta(hours=1)


@dataclass
class Api:
    client: TestClient[Any, Any]
    clock: list[datetime]
    sup: dict[str, str]
    agent: dict[str, str]

    async def call(
        self, method: str, path: str, body: Any = None, who: str = "sup", **params: str
    ) -> tuple[int, Any]:
        headers = {"sup": self.sup, "agent": self.agent, "nobody": {}}[who]
        r = await self.client.request(method, path, json=body, headers=headers, params=params)
        return r.status, await r.json()


@contextlib.asynccontextmanager
async def serving(database: str, api: type[Any], start: datetime = T0) -> AsyncIterator[Api]:
    """`api` (ComplaintsApi, CasesApi) on a migrated database, a supervisor's and an
    agent's tokens, and a wall clock the test sets."""
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    # The owners the tests give: staff members (an unknown owner is refused).
    await pool.executemany(
        "INSERT INTO staff (id, name, role) VALUES ($1, $1, 'team_leader') ON CONFLICT DO NOTHING",
        [(who,) for who in ("sup", "wang", "zhang", "li", "w")],
    )
    sessions = Sessions()
    sessions.add_user("sup", "sup-pw", "supervisor")
    sessions.add_user("a001", "first-pw", "agent")
    sup = await sessions.login("sup", "sup-pw", "127.0.0.1")
    agent = await sessions.login("a001", "first-pw", "127.0.0.1")
    clock = [start]

    async def get_pool() -> Any:
        return pool

    app = web.Application()
    app.add_routes(api(sessions, pool=get_pool, now=lambda: clock[0]).routes())
    try:
        async with TestClient(TestServer(app)) as client:
            yield Api(
                client, clock, {"Authorization": f"Bearer {sup}"},
                {"Authorization": f"Bearer {agent}"},
            )  # fmt: skip
    finally:
        await pool.close()


@pytest.fixture
async def api(database: str) -> AsyncIterator[Api]:
    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    await conn.close()
    async with serving(database, ComplaintsApi) as running:
        yield running


async def test_any_staff_logs_a_complaint_and_a_supervisor_works_it_to_its_close(api: Api) -> None:
    status, made = await api.call(
        "POST", "/api/complaints",
        {"matter": "the lift stops between floors", "complainant": "Li Lei",
         "contact": "13812345678", "occurred_at": "2026-03-01T20:00:00+08:00"},
        who="agent",
    )  # fmt: skip
    assert status == 201, made
    cid = made["id"]
    assert (made["status"], made["complaint_class"], made["reported_by"]) == (
        "received", "ordinary", "a001",
    )  # fmt: skip
    assert made["deadline_at"] == (T0 + 72 * H).isoformat() and made["overdue"] is False
    assert [h["action"] for h in made["history"]] == ["receive"]
    one = f"/api/complaints/{cid}"

    api.clock[0] = T0 + H
    assert (await api.call("POST", f"{one}/assign", {"owner": "sup"}))[0] == 200
    status, got = await api.call("POST", f"{one}/classify", {"complaint_class": "valid"})
    assert (status, got["status"], got["deadline_at"]) == (
        200,
        "classified",
        (T0 + 72 * H).isoformat(),
    )
    api.clock[0] = T0 + 5 * H
    status, got = await api.call(
        "POST", f"{one}/investigation", {"findings": "the door sensor is dirty", "on_site": True}
    )
    assert got["investigation"] == {
        "by": "sup",
        "findings": "the door sensor is dirty",
        "on_site": True,
    }
    # Found serious after the investigation: 48 h from receipt, not from now.
    status, got = await api.call(
        "POST", f"{one}/classify", {"complaint_class": "serious", "reason": "third time"}
    )
    assert (got["status"], got["deadline_at"]) == ("investigated", (T0 + 48 * H).isoformat())
    status, closed = await api.call("POST", f"{one}/close", {})
    assert status == 409 and "investigated" in closed["error"] and "close" in closed["error"]
    api.clock[0] = T0 + 6 * H
    status, got = await api.call(
        "POST", f"{one}/corrective-action",
        {"owner": "wang", "action": "clean the sensors weekly", "due_at": "2026-03-03T09:00:00+08:00"},
    )  # fmt: skip
    assert status == 200 and got["status"] == "correcting"
    assert got["corrective_action"]["due_at"] == "2026-03-03T01:00:00+00:00"
    assert got["met_at"] == (T0 + 6 * H).isoformat()
    status, got = await api.call("POST", f"{one}/call-back", {"reached": True, "satisfied": True})
    assert got["status"] == "called-back"
    status, refused = await api.call("POST", f"{one}/close", {"notes": "done"})
    assert status == 409 and "not been checked" in refused["error"]
    assert (await api.call("POST", f"{one}/check", {"effective": True}))[0] == 200
    api.clock[0] = T0 + 30 * H
    status, got = await api.call("POST", f"{one}/close", {"notes": "done"})
    assert (status, got["status"], got["closed_at"]) == (200, "closed", (T0 + 30 * H).isoformat())
    status, got = await api.call("GET", one)
    assert [(h["actor"], h["action"], h["to_status"]) for h in got["history"]] == [
        ("a001", "receive", "received"), ("sup", "assign", "received"),
        ("sup", "classify", "classified"), ("sup", "investigate", "investigated"),
        ("sup", "classify", "investigated"), ("sup", "correct", "correcting"),
        ("sup", "call-back", "called-back"), ("sup", "check", "called-back"),
        ("sup", "close", "closed"),
    ]  # fmt: skip
    # The closing change after a refused one: nothing extra in the history.
    status, stats = await api.call(
        "GET", "/api/stats/complaints", month="2026-03", tz="Asia/Shanghai"
    )
    assert status == 200
    assert (
        stats["received"],
        stats["closed"],
        stats["closed_in_time"],
        stats["timeliness_rate"],
    ) == (1, 1, 1, 1.0)
    assert stats["by_class"]["serious"] == 1 and stats["by_status"]["closed"] == 1


async def test_the_worklist_filters(api: Api) -> None:
    async def intake(cls: str) -> int:
        status, made = await api.call(
            "POST", "/api/complaints", {"matter": f"a {cls} one", "complaint_class": cls}
        )
        assert status == 201
        return int(made["id"])

    invalid, valid, other = (
        await intake("invalid"),
        await intake("valid"),
        await intake("other-unit"),
    )
    await api.call("POST", f"/api/complaints/{valid}/assign", {"owner": "zhang"})
    await api.call("POST", f"/api/complaints/{other}/classify", {"complaint_class": "other-unit"})

    async def ids(**params: str) -> list[int]:
        status, found = await api.call("GET", "/api/complaints", **params)
        assert status == 200, found
        return [c["id"] for c in found]

    assert await ids() == [invalid, valid, other]
    api.clock[0] = T0 + 25 * H  # an invalid complaint untouched for 25 h is overdue
    assert await ids(overdue="true") == [invalid]
    assert await ids(overdue="false") == [valid, other]
    assert await ids(owner="zhang") == [valid]
    assert await ids(**{"class": "other-unit"}) == [other]
    assert await ids(status="received") == [invalid, valid]
    assert await ids(status="classified") == [other]
    # Due today in Shanghai (2026-03-03 there, 25 h on): the invalid one, due at 09:00;
    # two days on, the 72-h ones. In UTC, 25 h on, the day is the 3rd too.
    assert await ids(due="today", tz="Asia/Shanghai") == [invalid]
    api.clock[0] = T0 + 47 * H  # 00:00 UTC on the 4th, 08:00 in Shanghai
    assert await ids(due="today") == []
    assert await ids(due="today", tz="Asia/Shanghai") == []
    api.clock[0] = T0 + 70 * H
    assert await ids(due="today", tz="Asia/Shanghai") == [valid, other]
    assert await ids(limit="1", offset="1") == [valid]
    status, got = await api.call("GET", f"/api/complaints/{invalid}")
    assert got["overdue"] is True
    for bad in ({"status": "open"}, {"overdue": "yes"}, {"limit": "0"}, {"tz": "Mars/Base"},
                {"due": "tomorrow"}, {"class": "rude"}):  # fmt: skip
        status, error = await api.call("GET", "/api/complaints", **bad)
        assert status == 400 and next(iter(bad)) in error["error"], (bad, error)


async def test_roles_and_refusals(api: Api) -> None:
    assert (await api.call("GET", "/api/complaints", who="nobody"))[0] == 401
    assert (await api.call("POST", "/api/complaints", {"matter": "x"}, who="nobody"))[0] == 401
    status, error = await api.call("GET", "/api/complaints", who="agent")
    assert (status, error["error"]) == (
        403, "read cases: team leaders, supervisors, QA and managers only"
    )
    status, made = await api.call("POST", "/api/complaints", {"matter": "noise"}, who="agent")
    assert status == 201
    assert (
        await api.call("POST", f"/api/complaints/{made['id']}/assign", {"owner": "a"}, who="agent")
    )[0] == 403
    assert (await api.call("GET", "/api/complaints/9999"))[0] == 404
    assert (await api.call("GET", "/api/complaints/abc"))[0] == 404
    assert (await api.call("POST", "/api/complaints/9999/close", {}))[0] == 404
    for body, where in (
        ({}, "matter"), ({"matter": ""}, "matter"), ({"matter": "x", "customer_id": "1"}, "customer_id"),
        ({"matter": "x", "occurred_at": "2026-03-01T20:00:00"}, "occurred_at"),  # no zone
        ({"matter": "x", "complaint_class": "angry"}, "complaint_class"), ({"matter": "x", "y": 1}, "y"),
    ):  # fmt: skip
        status, error = await api.call("POST", "/api/complaints", body)
        assert status == 400 and where in error["error"], (body, error)
    status, error = await api.call("POST", "/api/complaints", {"matter": "x", "customer_id": 77})
    assert status == 404 and "customer" in error["error"]
    status, error = await api.call(
        "POST", f"/api/complaints/{made['id']}/corrective-action",
        {"owner": "w", "action": "a", "due_at": "2026-03-03T09:00:00+08:00"},
    )  # fmt: skip
    assert status == 409 and "received" in error["error"]
    status, error = await api.call("GET", "/api/stats/complaints", month="2026-13")
    assert status == 400 and "month" in error["error"]


async def test_the_pops_cached_customer_learns_of_a_complaint_at_once(database: str) -> None:
    """A complaint received or changed through the API left the screen pop's cached
    look-up of its customer (30 s) as it was: a pop could list a complaint just
    closed, or miss one just received. The API now has the cache forget them."""
    from callcenter.records.customers import CustomerDirectory

    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    customer_id = await conn.fetchval(
        "INSERT INTO customers (name) VALUES ('Han Meimei') RETURNING id"
    )
    await conn.execute(
        "INSERT INTO customer_numbers (number, customer_id) VALUES ('+8613800000001', $1)",
        customer_id,
    )
    await conn.execute("INSERT INTO staff (id, name, role) VALUES ('sup', 'Sup', 'supervisor')")
    await conn.close()
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    directory = CustomerDirectory(pool)
    sessions = Sessions()
    sessions.add_user("sup", "sup-pw", "supervisor")
    auth = {"Authorization": f"Bearer {await sessions.login('sup', 'sup-pw', '127.0.0.1')}"}

    async def get_pool() -> Any:
        return pool

    app = web.Application()
    app.add_routes(ComplaintsApi(sessions, pool=get_pool, changed=directory.forget_customer,
                                 now=lambda: T0).routes())  # fmt: skip
    try:
        async with TestClient(TestServer(app)) as client:
            before = await directory.lookup("+8613800000001")  # cached from now on
            assert before is not None and before.open_complaints == ()
            r = await client.post(
                "/api/complaints", headers=auth,
                json={"matter": "the lift stopped again", "customer_id": customer_id},
            )  # fmt: skip
            assert r.status == 201, await r.text()
            complaint_id = (await r.json())["id"]
            after = await directory.lookup("+8613800000001")
            assert after is not None
            assert [c["matter"] for c in after.open_complaints] == ["the lift stopped again"]
            r = await client.post(
                f"/api/complaints/{complaint_id}/classify", headers=auth,
                json={"complaint_class": "serious"},
            )  # fmt: skip
            assert r.status == 200, await r.text()
            [listed] = (await directory.lookup("+8613800000001")).open_complaints  # type: ignore[union-attr]
            assert (listed["class"], listed["status"]) == ("serious", "classified")
    finally:
        await pool.close()
