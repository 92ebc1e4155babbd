"""The administration API on a real database whose audit log fails: a change and
its audit row are committed together or not at all."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcenter.agent.admin import AdminApi
from callcenter.agent.auth import Sessions
from callcenter.records import directory
from callcenter.records.migrate import apply_migrations
from callcenter.settings import AgentSettings, QueueSettings
from tests.agent.test_admin_outage import OPERATIONS


class Recording:
    """The floor's side of the administration: what reached it."""

    def __init__(self) -> None:
        self.changes: list[Any] = []

    async def administer(self, change: Any) -> None:
        self.changes.append(change)


CHANGES = [op for op in OPERATIONS if op[0] != "GET"]

# The audit row's insert fails: with an error, or by the database going away in the
# middle of it (the server ends the very connection).
_FAIL = {
    "error": "RAISE EXCEPTION 'the audit log is full'",
    "lost": "PERFORM pg_terminate_backend(pg_backend_pid())",
}


@pytest.mark.parametrize("failure", ["error", "lost"])
async def test_a_change_whose_audit_row_fails_is_not_made(database: str, failure: str) -> None:
    """A finding of issue 16: a change and its audit row were committed apart, so a
    database lost between the two made the change (and the floor took it) with no
    audit row, and answered an error although it took; a database lost
    mid-statement answered 500, not 503. Now both commit or neither, the floor is
    told only of what was committed, and a lost database is 503."""
    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    await directory.seed_and_load(
        conn,
        [AgentSettings(id="a1", name="Zhang Wei", number="001", extension="1001",
                       password="first-pw")],
        [QueueSettings(name="tech", numbers=["5000"])],
    )  # fmt: skip
    await conn.execute(
        "CREATE OR REPLACE FUNCTION audit_fails() RETURNS trigger LANGUAGE plpgsql AS"
        f" $$ BEGIN {_FAIL[failure]}; RETURN NEW; END $$;"
        " CREATE TRIGGER audit_fails BEFORE INSERT ON audit_log"
        " FOR EACH ROW EXECUTE FUNCTION audit_fails()"
    )
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    before = [await conn.fetch(f"SELECT * FROM {t} ORDER BY 1") for t in ("agents", "queues")]
    sessions = Sessions()
    sessions.add_user("sup", "sup-pw", "supervisor")
    token = await sessions.login("sup", "sup-pw", "127.0.0.1")
    floor = Recording()

    async def get_pool() -> Any:
        return pool

    admin = AdminApi(
        sessions, control=floor, pool=get_pool, to_queue=QueueSettings.config,  # type: ignore[arg-type]
        phone_realm="cc.example",
    )  # fmt: skip
    app = web.Application()
    app.add_routes(admin.routes())
    try:
        async with TestClient(TestServer(app)) as client:
            for method, path, body in CHANGES:
                r = await client.request(
                    method, path, json=body, headers={"Authorization": f"Bearer {token}"}
                )
                assert r.status == (500 if failure == "error" else 503), (method, path)
        after = [await conn.fetch(f"SELECT * FROM {t} ORDER BY 1") for t in ("agents", "queues")]
        assert after == before  # nothing changed
        assert floor.changes == []  # and the floor was told nothing
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 0
    finally:
        await pool.close()
        await conn.close()
