"""The service's connection pool against a real PostgreSQL: what it does with a
connection taken back."""

from __future__ import annotations

from callcenter.records.database import Pool


async def test_a_connection_taken_back_costs_no_statement(database: str) -> None:
    """asyncpg's default reset is one more statement per use (per screen pop's
    customer lookup): the pool's own sends nothing for a connection left clean."""
    pool = Pool(database, max_size=1)
    try:
        asyncpg_pool = await pool.get()
        queries: list[str] = []
        async with asyncpg_pool.acquire() as conn:
            conn.add_query_logger(lambda q: queries.append(q.query))
            assert await conn.fetchval("SELECT 41 + 1") == 42
        async with asyncpg_pool.acquire() as again:
            assert again is not None
        assert queries == ["SELECT 41 + 1"]
    finally:
        await pool.close()


async def test_a_connection_taken_back_inside_a_transaction_is_rolled_back(
    database: str,
) -> None:
    pool = Pool(database, max_size=1)
    try:
        asyncpg_pool = await pool.get()
        async with asyncpg_pool.acquire() as conn:
            await conn.execute("CREATE TABLE kept (n integer)")
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO kept VALUES (1)")
            assert conn.is_in_transaction()
        async with asyncpg_pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM kept") == 0
    finally:
        await pool.close()
