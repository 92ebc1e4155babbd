"""Agents and queues: seeded from the configuration once, then read from the database."""

from __future__ import annotations

import asyncpg

from callcenter.records.directory import seed_and_load
from callcenter.records.migrate import apply_migrations
from callcenter.settings import AgentSettings, QueueSettings


async def test_seeded_once_then_the_database_wins(database: str) -> None:
    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    agents = [
        AgentSettings(
            id="a1", name="Li", number="001", extension="1001", password="pw", ready_on_start=True
        )
    ]
    queues = [QueueSettings(name="hotline", numbers=["4000"])]
    try:
        first = await seed_and_load(conn, agents, queues)
        assert [a.id for a in first.agents] == ["a1"] and first.agents[
            0
        ].password.get_secret_value() == "pw"
        assert first.queues[0].numbers == ["4000"]
        # Managed in the database: renamed there, a second agent added, a bad queue row.
        await conn.execute("UPDATE agents SET name = 'Li Lei' WHERE id = 'a1'")
        await conn.execute(
            "INSERT INTO agents (id, name, number, extension) VALUES ('a2', 'Han', '002', '1002')"
        )
        await conn.execute(
            """INSERT INTO queues (name, config) VALUES ('broken', '{"name": "broken", "strategy": "random"}')"""
        )
        again = await seed_and_load(conn, [*agents], queues)  # the file still says "Li"
        assert [(a.id, a.name) for a in again.agents] == [("a1", "Li Lei"), ("a2", "Han")]
        assert [q.name for q in again.queues] == ["hotline"]
        assert again.problems and again.problems[0].startswith("queue 'broken'")
    finally:
        await conn.close()
