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


async def test_each_setting_the_file_says_otherwise_than_the_database_is_named(
    database: str,
) -> None:
    """Issue 19, item 6: the file seeds the database on the first start only, and
    later edits to it were ignored without a word; each is now named, with the
    way to make it take effect."""
    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    li = AgentSettings(id="a1", name="Li", number="001", extension="1001")
    han = AgentSettings(id="a2", name="Han", number="002", extension="1002")
    hotline = QueueSettings(name="hotline", numbers=["4000"], max_wait=300)
    try:
        first = await seed_and_load(conn, [li, han], [hotline])
        assert (first.divergences, first.only_in_database) == ([], [])
        # Changed through the database (the administration API) after the first start ...
        await directory.put_queue(conn, hotline.model_copy(update={"max_wait": 120.0}))
        await conn.execute(
            "UPDATE agents SET name = 'Li Lei', groups = '{\"tech\": 2}' WHERE id = 'a1'"
        )
        await conn.execute("UPDATE agents SET enabled = false WHERE id = 'a2'")
        await conn.execute(
            "INSERT INTO agents (id, name, number, extension) VALUES ('a9', 'Wu', '009', '1009')"
        )
        await directory.put_queue(conn, QueueSettings(name="vip"))
        # ... and the file edited too: a new agent with a9's extension, a queue's number.
        zhao = AgentSettings(id="a3", name="Zhao", number="003", extension="1009")
        edited = hotline.model_copy(update={"numbers": ["4000", "4001"]})
        again = await seed_and_load(conn, [li, han, zhao], [edited])
    finally:
        await conn.close()

    agent = "database wins; change it through the administration API: PATCH /api/admin/agents/"
    queue = "database wins; change it through the administration API: PUT /api/admin/queues/"
    assert again.divergences == [
        f'agent a1: name file="Li" database="Li Lei" ({agent}a1)',
        f'agent a1: groups file={{"service":1}} database={{"tech":2}} ({agent}a1)',
        f"agent a2: enabled file=true database=false ({agent}a2)",
        "agent a3: not in the database, its extension 1009 is agent a9's"
        " (the file's entry is not used; give it another extension)",
        f'queue hotline: numbers file=["4000","4001"] database=["4000"] ({queue}hotline)',
        f"queue hotline: max_wait file=300.0 database=120.0 ({queue}hotline)",
    ]
    assert again.only_in_database == ["agent a9", "queue vip"]
    # The database's settings are the ones used.
    assert [(a.id, a.name) for a in again.agents] == [("a1", "Li Lei"), ("a9", "Wu")]
    assert {q.name: (q.numbers, q.max_wait) for q in again.queues} == {
        "hotline": (["4000"], 120.0),
        "vip": ([], 300.0),
    }


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
