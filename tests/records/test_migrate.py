"""Migrations against a real PostgreSQL: they apply on an empty database, then are a no-op."""

from __future__ import annotations

import asyncpg

from callcenter.records.migrate import apply_migrations, migrations


async def test_migrations_apply_once_then_are_a_no_op(database: str) -> None:
    conn = await asyncpg.connect(database)
    try:
        first = await apply_migrations(conn)
        assert [m.version for m in first] == [m.version for m in migrations()]
        assert first[0].version == 1
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        assert {
            "calls",
            "ring_attempts",
            "call_events",
            "agent_state_history",
            "schema_migrations",
        } <= tables
        assert await apply_migrations(conn) == []
        recorded = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [(r["version"], r["name"]) for r in recorded] == [(m.version, m.name) for m in first]
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_half_applied(database: str, monkeypatch) -> None:
    from callcenter.records import migrate

    broken = migrate.Migration(
        9999, "broken", "CREATE TABLE half (x int); SELECT no_such_function();"
    )
    monkeypatch.setattr(migrate, "migrations", lambda: [*migrations(), broken])
    conn = await asyncpg.connect(database)
    try:
        try:
            await apply_migrations(conn)
        except asyncpg.PostgresError:
            pass
        else:
            raise AssertionError("the broken migration should fail")
        assert await conn.fetchval("SELECT to_regclass('half')") is None
        assert (
            await conn.fetchval("SELECT max(version) FROM schema_migrations")
            == migrations()[-1].version
        )
    finally:
        await conn.close()


def test_calls_outcome_is_checked_by_the_schema() -> None:
    sql = migrations()[0].sql
    assert "'short-abandon'" in sql and "CHECK (outcome IN" in sql


def test_migrate_command_on_the_embedded_database_persists_across_runs(tmp_path) -> None:
    """`callcenter migrate` with no DSN starts its own PostgreSQL in data_dir."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env["CALLCENTER_SERVICE__DATA_DIR"] = str(tmp_path / "var")
    run = [sys.executable, "-m", "callcenter", "migrate"]
    first = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "migrations applied: 0001_calls" in first.stdout
    second = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert "none (up to date)" in second.stdout
    assert (tmp_path / "var" / "postgres").is_dir()
