"""The demo's customers (issue 17, a first run): seeded once, two with an open
complaint, found by the screen pop's look-up."""

from __future__ import annotations

import asyncpg

from callcenter.demo import seed_customers
from callcenter.records.customers import CustomerDirectory
from callcenter.records.migrate import apply_migrations


async def test_the_demo_seeds_its_customers_once_and_pops_find_them(database: str) -> None:
    conn = await asyncpg.connect(database)
    try:
        await apply_migrations(conn)
        assert await seed_customers(database) is True
        counts = [await conn.fetchval(f"SELECT count(*) FROM {t}")
                  for t in ("customers", "complaints")]  # fmt: skip
        assert counts == [6, 2]
        assert await seed_customers(database) is False  # a second run keeps the first's
        assert [await conn.fetchval(f"SELECT count(*) FROM {t}")
                for t in ("customers", "complaints")] == counts  # fmt: skip
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(database, min_size=1, max_size=1)
    try:
        directory = CustomerDirectory(pool)
        found = await directory.lookup("+8613800000001")
        assert found is not None and found.name == "韩梅梅" and found.vip
        assert [c["matter"] for c in found.open_complaints] == ["维修人员上门迟到两个小时"]
        assert (await directory.lookup("+8613800000002")).open_complaints == ()  # type: ignore[union-attr]
    finally:
        await pool.close()


async def test_a_database_that_cannot_be_reached_leaves_the_demo_running() -> None:
    assert await seed_customers("postgresql://nobody@127.0.0.1:1/none") is False
