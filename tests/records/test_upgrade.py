"""A database written by an earlier version gets what the reports read from the
migrations that add it: the agent's part of each answered offer (0017) and the
state changes' time of writing (0018)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from callcenter.records import migrate
from callcenter.records.migrate import apply_migrations
from callcenter.records.state_hours import refresh, state_seconds, summarized_to

T = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


async def test_the_history_before_the_migrations_is_filled_in(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    every = migrate.migrations()
    monkeypatch.setattr(migrate, "migrations", lambda: [m for m in every if m.version < 17])
    conn = await asyncpg.connect(database)
    try:
        await apply_migrations(conn)
        # As the writer of the version before wrote them: two answered offers, one
        # ended by the caller, one by a transfer (and the agent's later call), one missed.
        await conn.executemany(
            "INSERT INTO ring_attempts (leg_id, call_id, agent_id, offered_at, ended_at,"
            " outcome, leg_rings) VALUES ($1, $2, $3, $4, $5, $6, 1)",
            [
                ("l1", "c1", "a1", T, T + timedelta(seconds=4), "answered"),
                ("l2", "c2", "a1", T, T + timedelta(seconds=3), "answered"),
                ("l3", "c2", "a2", T, T + timedelta(seconds=2), "missed"),
            ],
        )
        events = [
            ("k1", "c1", T + timedelta(seconds=64), "CallEnded",
             {"agent_id": "a1", "talk_seconds": 60.0, "hung_up_by": "caller"}),
            ("k2", "c2", T + timedelta(seconds=23), "CallTransferred",
             {"agent_id": "a1", "talk_seconds": 20.0, "target": "a2"}),
            ("k3", "c2", T + timedelta(seconds=90), "CallEnded",  # a2's part, after it
             {"agent_id": "a2", "talk_seconds": 50.0, "hung_up_by": "agent"}),
        ]  # fmt: skip
        await conn.executemany(
            "INSERT INTO call_events (key, call_id, at, kind, data) VALUES ($1, $2, $3, $4, $5)",
            [(k, c, at, kind, json.dumps(data)) for k, c, at, kind, data in events],
        )
        await conn.executemany(
            "INSERT INTO agent_state_history (key, agent_id, at, state, previous)"
            " VALUES ($1, 'a1', $2, $3, 'offline')",
            [("b:1", T, "ready"), ("b:2", T + timedelta(hours=2), "not-ready")],
        )
        monkeypatch.setattr(migrate, "migrations", lambda: every)
        await apply_migrations(conn)

        legs = {
            r["leg_id"]: (r["talk_seconds"], r["hung_up_by"])
            for r in await conn.fetch("SELECT * FROM ring_attempts")
        }
        assert legs == {"l1": (60.0, "caller"), "l2": (20.0, "transferred"), "l3": (None, None)}
        # None of the changes before is late: the first summary takes them all at once.
        assert await conn.fetchval(
            "SELECT count(*) FROM agent_state_history WHERE written_at = '-infinity'"
        ) == 2
        assert await refresh(conn) == 2
        assert await summarized_to(conn) == T + timedelta(hours=2)
        [seconds] = await state_seconds(conn, T, T + timedelta(hours=3), ["a1"])
        assert (seconds.idle_seconds, seconds.pause_seconds) == (7200.0, 0.0)
        await conn.execute(
            "INSERT INTO agent_state_history (key, agent_id, at, state, previous)"
            " VALUES ('b:3', 'a1', $1, 'ready', 'not-ready')",
            T + timedelta(hours=3),
        )
        new = await conn.fetchval("SELECT written_at FROM agent_state_history WHERE key = 'b:3'")
        assert abs(new - datetime.now(UTC)) < timedelta(minutes=5)
    finally:
        await conn.close()
