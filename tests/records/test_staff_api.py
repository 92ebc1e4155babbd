"""Staff roles and the staff's administration on a real database: each role's
allowed and refused calls across the administration, complaints and cases
APIs (callcenter/roles.py); staff seeded from the file, added, edited,
disabled and their passwords reset through the API, audited with the change,
their sessions ended; owners checked against the staff directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcenter.agent.admin import AdminApi
from callcenter.agent.auth import LoginRefused, Sessions
from callcenter.agent.cases_api import CasesApi
from callcenter.agent.complaints_api import ComplaintsApi
from callcenter.floor_side.floor import staff_logins
from callcenter.records import staff
from callcenter.records.migrate import apply_migrations
from callcenter.roles import ROLES, Permission, may
from callcenter.settings import QueueSettings, SupervisorSettings
from tests.helpers import HandControl

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)

#: The file's staff: one of each role, as ``[[desktop.supervisors]]``.
FILE = [
    SupervisorSettings(id="sup", name="Operations", password="pw-sup-1"),
    SupervisorSettings(id="boss", name="Centre manager", password="pw-boss-1", role="manager"),
    SupervisorSettings(id="qa1", name="QA", password="pw-qa1-1", role="qa"),
    SupervisorSettings(
        id="tl1", name="Team one", password="pw-tl1-1", role="team_leader", team="service"
    ),
]
PASSWORDS = {s.id: s.password.get_secret_value() for s in FILE} | {"a001": "pw-a001-1"}
WHO = {"agent": "a001", "team_leader": "tl1", "supervisor": "sup", "qa": "qa1", "manager": "boss"}


@dataclass
class Running:
    client: TestClient[Any, Any]
    sessions: Sessions
    dsn: str
    tokens: dict[str, str]

    async def login(self, user: str, password: str | None = None) -> str:
        return await self.sessions.login(user, password or PASSWORDS[user], "127.0.0.1")

    async def call(
        self, method: str, path: str, body: Any = None, who: str = "sup", **params: str
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens.get(who, who)}"}
        r = await self.client.request(method, path, json=body, headers=headers, params=params)
        return r.status, await r.json()

    async def audit(self) -> list[tuple[str, str, str]]:
        conn = await asyncpg.connect(self.dsn)
        try:
            rows = await conn.fetch("SELECT actor, action, target FROM audit_log ORDER BY id")
        finally:
            await conn.close()
        return [(r["actor"], r["action"], r["target"]) for r in rows]


@pytest.fixture
async def running(database: str) -> AsyncIterator[Running]:
    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    await conn.execute(
        "INSERT INTO agents (id, name, number, extension, groups)"
        " VALUES ('a001', 'Zhang Wei', '001', '1001', '{\"service\": 1}')"
    )
    await staff.seed(conn, FILE)  # as the service's first start
    members = await staff.load(conn)
    await conn.close()
    sessions = Sessions()
    sessions.add_user("a001", PASSWORDS["a001"], "agent")
    staff_logins(sessions, FILE, members)
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)

    async def get_pool() -> Any:
        return pool

    app = web.Application()
    app.add_routes([
        *AdminApi(sessions, control=HandControl(), pool=get_pool,
                  to_queue=QueueSettings.config,
                  staff_passwords={s.id: s.password.get_secret_value() for s in FILE}).routes(),
        *ComplaintsApi(sessions, pool=get_pool, now=lambda: T0).routes(),
        *CasesApi(sessions, pool=get_pool, now=lambda: T0).routes(),
    ])  # fmt: skip
    try:
        async with TestClient(TestServer(app)) as client:
            run = Running(client, sessions, database, {})
            for role, user in WHO.items():
                run.tokens[role] = run.tokens[user] = await run.login(user)
            yield run
    finally:
        await pool.close()


# (method, path, body, query, what it asks for)
CALLS: list[tuple[str, str, Any, dict[str, str], Permission]] = [
    ("GET", "/api/admin/agents", None, {}, Permission.ADMINISTER),
    ("GET", "/api/admin/queues", None, {}, Permission.ADMINISTER),
    ("GET", "/api/admin/staff", None, {}, Permission.ADMINISTER),
    ("GET", "/api/admin/audit", None, {}, Permission.ADMINISTER),
    ("POST", "/api/admin/staff/tl1/password", {"password": "pw-tl1-2"}, {}, Permission.ADMINISTER),
    ("GET", "/api/complaints", None, {}, Permission.READ_CASES),
    ("GET", "/api/complaints/1", None, {}, Permission.READ_CASES),
    ("POST", "/api/complaints", {"matter": "noise at night"}, {}, Permission.INTAKE),
    ("POST", "/api/complaints/1/classify", {"complaint_class": "valid"}, {},
     Permission.WORK_CASES),
    ("POST", "/api/complaints/1/assign", {"owner": "tl1"}, {}, Permission.WORK_CASES),
    ("GET", "/api/stats/complaints", None, {"month": "2026-03"}, Permission.STATISTICS),
    ("GET", "/api/suggestions", None, {}, Permission.READ_CASES),
    ("POST", "/api/suggestions", {"text": "open the gate at six"}, {}, Permission.INTAKE),
    ("POST", "/api/suggestions/1/assess", {"feasible": True, "valuable": True}, {},
     Permission.WORK_CASES),
    ("GET", "/api/follow-ups", None, {}, Permission.READ_CASES),
]  # fmt: skip


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_is_allowed_and_refused_as_the_table_says(
    running: Running, role: str
) -> None:
    # A complaint and a suggestion to work on, logged by the agent.
    assert (await running.call("POST", "/api/complaints", {"matter": "x"}, who="agent"))[0] == 201
    assert (await running.call("POST", "/api/suggestions", {"text": "y"}, who="agent"))[0] == 201
    for method, path, body, query, needs in CALLS:
        status, answer = await running.call(method, path, body, who=role, **query)
        if may(role, needs):
            assert status in (200, 201), (role, method, path, answer)
        else:
            assert status == 403, (role, method, path, answer)
            assert answer["error"].startswith(f"{needs.value}: "), answer


async def test_staff_are_added_edited_disabled_and_reset_audited_their_sessions_ended(
    running: Running,
) -> None:
    status, listed = await running.call("GET", "/api/admin/staff", who="boss")
    assert status == 200
    assert [(m["id"], m["role"], m["team"], m["enabled"]) for m in listed] == [
        ("boss", "manager", None, True), ("qa1", "qa", None, True), ("sup", "supervisor", None, True),
        ("tl1", "team_leader", "service", True),
    ]  # fmt: skip
    new = {"id": "tl2", "name": "Team two", "role": "team_leader", "team": "tech",
           "password": "pw-tl2-1"}  # fmt: skip
    assert (await running.call("POST", "/api/admin/staff", new))[0] == 201
    # The same id again, an agent's id, or a role there is not: refused, not audited.
    assert (await running.call("POST", "/api/admin/staff", new))[0] == 409
    status, error = await running.call("POST", "/api/admin/staff", {**new, "id": "a001"})
    assert status == 409 and "a001" in error["error"]
    status, error = await running.call("POST", "/api/admin/staff", {**new, "role": "agent"})
    assert status == 400 and "role" in error["error"]
    agent = {"id": "tl1", "name": "X", "number": "009", "extension": "1009",
             "password": "pw-x-12345"}  # fmt: skip
    status, error = await running.call("POST", "/api/admin/agents", agent)
    assert status == 409 and "staff" in error["error"]
    tl2 = await running.login("tl2", "pw-tl2-1")
    assert running.sessions.check(tl2).role == "team_leader"  # type: ignore[union-attr]

    # A new role: the old role's token ends; the next login has the new one.
    status, edited = await running.call(
        "PATCH", "/api/admin/staff/tl2", {"role": "qa", "team": None}
    )
    assert (status, edited) == (200, {"id": "tl2", "role": "qa", "enabled": True})
    assert running.sessions.check(tl2) is None
    tl2 = await running.login("tl2", "pw-tl2-1")
    assert running.sessions.check(tl2).role == "qa"  # type: ignore[union-attr]
    # Disabled: the token ends and the password opens nothing; enabled again: it does.
    assert (await running.call("PATCH", "/api/admin/staff/tl2", {"enabled": False}))[0] == 200
    assert running.sessions.check(tl2) is None
    with pytest.raises(LoginRefused):
        await running.login("tl2", "pw-tl2-1")
    assert (await running.call("POST", "/api/admin/staff/tl2/password",
                               {"password": "pw-tl2-2"}))[0] == 404  # fmt: skip
    assert (await running.call("PATCH", "/api/admin/staff/tl2", {"enabled": True}))[0] == 200
    await running.login("tl2", "pw-tl2-1")
    # A file member enabled again logs in with the file's password.
    assert (await running.call("PATCH", "/api/admin/staff/qa1", {"enabled": False}))[0] == 200
    assert running.sessions.check(running.tokens["qa1"]) is None
    assert (await running.call("PATCH", "/api/admin/staff/qa1", {"enabled": True}))[0] == 200
    await running.login("qa1")
    # A password reset: the tokens end, the old password opens nothing.
    tl1 = running.tokens["tl1"]
    assert (await running.call("POST", "/api/admin/staff/tl1/password",
                               {"password": "pw-tl1-2"}))[0] == 200  # fmt: skip
    assert running.sessions.check(tl1) is None
    with pytest.raises(LoginRefused):
        await running.login("tl1")
    await running.login("tl1", "pw-tl1-2")
    # No one changes their own role or disables themselves (another may).
    status, error = await running.call("PATCH", "/api/admin/staff/boss", {"role": "qa"},
                                       who="boss")  # fmt: skip
    assert status == 409 and "own" in error["error"]
    assert (await running.call("PATCH", "/api/admin/staff/boss", {"team": "service"},
                               who="boss"))[0] == 200  # fmt: skip
    assert (await running.call("PATCH", "/api/admin/staff/nobody", {"enabled": False}))[0] == 404
    # Every change audited, in its transaction: the refused ones not.
    assert await running.audit() == [
        ("sup", "staff.add", "tl2"),
        ("sup", "staff.edit", "tl2"),
        ("sup", "staff.edit", "tl2"),
        ("sup", "staff.edit", "tl2"),
        ("sup", "staff.edit", "qa1"),
        ("sup", "staff.edit", "qa1"),
        ("sup", "staff.password", "tl1"),
        ("boss", "staff.edit", "boss"),
    ]


async def test_the_file_seeds_the_staff_once_and_the_database_wins(database: str) -> None:
    conn = await asyncpg.connect(database)
    try:
        await apply_migrations(conn)
        await staff.seed(conn, FILE)
        await conn.execute("UPDATE staff SET role = 'supervisor' WHERE id = 'qa1'")
        await conn.execute("UPDATE staff SET enabled = false WHERE id = 'tl1'")
        # The file changed since: a row the database has is not overwritten.
        await staff.seed(conn, [FILE[2].model_copy(update={"name": "renamed"})])
        members = await staff.load(conn)
    finally:
        await conn.close()
    assert [(m.id, m.name, m.role) for m in members] == [
        ("boss", "Centre manager", "manager"), ("qa1", "QA", "supervisor"),
        ("sup", "Operations", "supervisor"),
    ]  # fmt: skip
    sessions = Sessions()
    staff_logins(sessions, FILE, members)
    qa1 = await sessions.login("qa1", PASSWORDS["qa1"], "127.0.0.1")
    assert sessions.check(qa1).role == "supervisor"  # type: ignore[union-attr]
    with pytest.raises(LoginRefused):  # disabled in the database
        await sessions.login("tl1", PASSWORDS["tl1"], "127.0.0.1")
    # Without the database: the file's roles.
    sessions = Sessions()
    staff_logins(sessions, FILE, None)
    boss = await sessions.login("boss", PASSWORDS["boss"], "127.0.0.1")
    assert sessions.check(boss).role == "manager"  # type: ignore[union-attr]


async def test_an_owner_is_an_enabled_agent_or_staff_member_or_a_404_naming_it(
    running: Running,
) -> None:
    _, made = await running.call("POST", "/api/complaints", {"matter": "the lift"}, who="agent")
    one = f"/api/complaints/{made['id']}"
    status, error = await running.call("POST", f"{one}/assign", {"owner": "ghost"})
    assert status == 404 and "'ghost'" in error["error"]
    assert (await running.call("PATCH", "/api/admin/staff/tl1", {"enabled": False}))[0] == 200
    status, error = await running.call("POST", f"{one}/assign", {"owner": "tl1"})
    assert status == 404 and "'tl1'" in error["error"]
    for owner in ("a001", "qa1"):  # an agent, a staff member
        status, got = await running.call("POST", f"{one}/assign", {"owner": owner})
        assert (status, got["owner"]) == (200, owner)
    await running.call("POST", f"{one}/classify", {"complaint_class": "valid"})
    await running.call("POST", f"{one}/investigation", {"findings": "the door sensor"})
    status, error = await running.call(
        "POST", f"{one}/corrective-action",
        {"owner": "nobody", "action": "a", "due_at": "2026-03-03T09:00:00+08:00"},
    )  # fmt: skip
    assert status == 404 and "'nobody'" in error["error"]
    status, error = await running.call("POST", "/api/follow-ups/1/assign", {"owner": "ghost"})
    assert status == 404 and "'ghost'" in error["error"]
