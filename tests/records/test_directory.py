"""Agents and queues: seeded from the configuration once, then read from the database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from callcenter.records import directory
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


# -- the administration's reads and changes ---------------------------------------------------


@pytest.fixture
async def conn(database: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database)
    try:
        await apply_migrations(conn)
        yield conn
    finally:
        await conn.close()


DIGEST = {"realm": "cc.example", "user": "1001", "MD5": "aa", "SHA-256": "bb"}


async def add(conn: asyncpg.Connection, agent_id: str, extension: str, **more: Any) -> None:
    fields: dict[str, Any] = {
        "name": f"Agent {agent_id}", "number": "001", "groups": {"service": 1},
        "password_hash": "$argon2id$hash", "sip_digest": None, **more,
    }  # fmt: skip
    await directory.add_agent(conn, agent_id=agent_id, extension=extension, **fields)


async def test_agents_added_read_back_and_refused_twice(conn: asyncpg.Connection) -> None:
    await add(conn, "a2", "1002", groups={"tech": 3}, sip_digest=DIGEST)
    await add(conn, "a1", "1001")
    assert await directory.agents(conn) == [
        directory.AgentRow("a1", "Agent a1", "001", "1001", {"service": 1}, True, None),
        directory.AgentRow("a2", "Agent a2", "001", "1002", {"tech": 3}, True, DIGEST),
    ]
    assert await directory.agent(conn, "a2") == (await directory.agents(conn))[1]
    assert await directory.agent(conn, "ghost") is None
    with pytest.raises(directory.AlreadyExists, match=r"Key \(id\)=\(a1\) already exists"):
        await add(conn, "a1", "1009")
    with pytest.raises(directory.AlreadyExists, match=r"\(extension\)=\(1001\)"):
        await add(conn, "a3", "1001")
    assert [a.id for a in await directory.agents(conn)] == ["a1", "a2"]
    # What the floor loads: the hash a supervisor set, the phone's digests.
    loaded = await directory.load(conn, [])
    assert loaded.password_hashes == {"a1": "$argon2id$hash", "a2": "$argon2id$hash"}
    assert loaded.phone_digests == {"1002": DIGEST}


async def test_an_edit_commits_only_if_what_follows_it_raises_nothing(
    conn: asyncpg.Connection,
) -> None:
    await add(conn, "a1", "1001", sip_digest=DIGEST)
    await add(conn, "a2", "1002")
    seen: list[directory.AgentRow | None] = []

    async def refused() -> None:
        seen.append(await directory.agent(conn, "a1"))  # inside the transaction
        raise LookupError("the floor refused")

    edit = {"name": "Li", "number": "009", "extension": "1001", "groups": {"tech": 2}}
    with pytest.raises(LookupError):
        await directory.update_agent(conn, "a1", **edit, enabled=False, then=refused)
    assert seen[0] is not None and (seen[0].name, seen[0].enabled) == ("Li", False)
    before = directory.AgentRow("a1", "Agent a1", "001", "1001", {"service": 1}, True, DIGEST)
    assert await directory.agent(conn, "a1") == before  # rolled back
    assert not conn.is_in_transaction()

    # Taken: the same extension keeps the phone's digests.
    await directory.update_agent(conn, "a1", **edit, enabled=True)
    after = directory.AgentRow("a1", "Li", "009", "1001", {"tech": 2}, True, DIGEST)
    assert await directory.agent(conn, "a1") == after
    # Another agent's extension: refused, nothing changed.
    with pytest.raises(directory.AlreadyExists, match=r"\(extension\)=\(1002\)"):
        await directory.update_agent(conn, "a1", **{**edit, "extension": "1002"}, enabled=True)
    assert await directory.agent(conn, "a1") == after
    # A new extension drops the digests, which hash the old one.
    await directory.update_agent(conn, "a1", **{**edit, "extension": "1003"}, enabled=True)
    moved = await directory.agent(conn, "a1")
    assert moved is not None and (moved.extension, moved.sip_digest) == ("1003", None)


async def test_passwords_set_for_agents_enabled(conn: asyncpg.Connection) -> None:
    await add(conn, "a1", "1001")
    await add(conn, "a2", "1002")
    edit = {"name": "B", "number": "002", "extension": "1002", "groups": {}}
    await directory.update_agent(conn, "a2", **edit, enabled=False)
    assert await directory.enabled_extension(conn, "a1") == "1001"
    assert await directory.enabled_extension(conn, "a2") is None  # disabled
    assert await directory.enabled_extension(conn, "ghost") is None
    await directory.set_password_hash(conn, "a1", "$argon2id$new")
    await directory.set_sip_digest(conn, "a1", DIGEST)
    loaded = await directory.load(conn, [])
    assert loaded.password_hashes["a1"] == "$argon2id$new"
    # A disabled agent's hash is not loaded: after a restart they could log in to
    # the desktop again (issue 16, item 13: a removal ends the agent's sessions).
    assert "a2" not in loaded.password_hashes
    assert loaded.phone_digests == {"1001": DIGEST}
    row = await directory.agent(conn, "a1")
    assert row is not None and row.sip_digest == DIGEST


async def test_queues_put_replaced_and_listed_as_stored(conn: asyncpg.Connection) -> None:
    await directory.put_queue(conn, QueueSettings(name="tech", numbers=["5000"]))
    await directory.put_queue(conn, QueueSettings(name="hotline", numbers=["4000"]))
    await directory.put_queue(conn, QueueSettings(name="tech", numbers=["5001"], group="tech"))
    await conn.execute(
        """INSERT INTO queues (name, config) VALUES ('zz', '{"name": "zz", "strategy": "random"}')"""
    )
    configs = await directory.queue_configs(conn)
    assert [(c["name"], c.get("numbers")) for c in configs] == [
        ("hotline", ["4000"]), ("tech", ["5001"]), ("zz", None),
    ]  # fmt: skip
    assert configs[1] == QueueSettings(name="tech", numbers=["5001"], group="tech").model_dump(
        mode="json"
    )
    # The same rows the floor loads (the bad one skipped there).
    assert [q.name for q in (await directory.load(conn, [])).queues] == ["hotline", "tech"]
