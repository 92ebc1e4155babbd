"""The administration API without its database: every operation answers 503
with the reason, whether the database is off or cannot be reached."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcenter.agent.admin import AdminApi
from callcenter.agent.auth import Sessions
from callcenter.settings import QueueSettings
from tests.helpers import HandControl

AGENT = {"id": "a2", "name": "Li Na", "number": "002", "extension": "1002",
         "password": "second-pw"}  # fmt: skip
OPERATIONS = [
    ("GET", "/api/admin/agents", None),
    ("POST", "/api/admin/agents", AGENT),
    ("POST", "/api/admin/agents", {**AGENT, "sip_password": "phone-pw-1"}),
    ("PATCH", "/api/admin/agents/a1", {"enabled": False}),
    ("POST", "/api/admin/agents/a1/password", {"password": "new-secret"}),
    ("POST", "/api/admin/agents/a1/sip-password", {"password": "new-secret"}),
    ("GET", "/api/admin/queues", None),
    ("PUT", "/api/admin/queues/tech", {"name": "tech", "numbers": ["5000"]}),
    ("GET", "/api/admin/audit", None),
]


async def unreachable() -> Any:
    raise ConnectionRefusedError(111, "Connect call failed")


async def too_slow() -> Any:
    raise TimeoutError()


@pytest.mark.parametrize(
    ("pool", "error"),
    [
        (None, "administration needs the database (database.enabled)"),
        (unreachable, "the database is unavailable: [Errno 111] Connect call failed"),
        (too_slow, "the database is unavailable: "),
    ],
)
async def test_every_operation_answers_503_without_the_database(pool: Any, error: str) -> None:
    sessions = Sessions()
    sessions.add_user("sup", "sup-pw", "supervisor")
    token = await sessions.login("sup", "sup-pw", "127.0.0.1")
    admin = AdminApi(
        sessions, control=HandControl(), pool=pool, to_queue=QueueSettings.config,
        phone_realm="cc.example",
    )  # fmt: skip
    app = web.Application()
    app.add_routes(admin.routes())
    async with TestClient(TestServer(app)) as client:
        for method, path, body in OPERATIONS:
            r = await client.request(
                method, path, json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert (r.status, await r.json()) == (503, {"error": error}), (method, path)

