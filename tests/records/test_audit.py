"""The administration's audit log against PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from callcenter.records import audit
from callcenter.records.migrate import apply_migrations


async def test_entries_newest_first_with_their_details(database: str) -> None:
    conn = await asyncpg.connect(database)
    try:
        await apply_migrations(conn)
        assert await audit.recent(conn) == []
        start = datetime.now(UTC)
        await audit.append(conn, "sup", "agent.add", "a2", {"groups": {"tech": 3}, "sip": True})
        when = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)
        # What JSON cannot hold is stored as its text.
        await audit.append(conn, "sup", "queue.put", "tech", {"at": when, "file": Path("q")})
        await audit.append(conn, "boss", "agent.password", "a1", {})
        entries = await audit.recent(conn)
        assert [(e.actor, e.action, e.target, e.details) for e in entries] == [
            ("boss", "agent.password", "a1", {}),
            ("sup", "queue.put", "tech", {"at": "2026-12-07 09:30:00+00:00", "file": "q"}),
            ("sup", "agent.add", "a2", {"groups": {"tech": 3}, "sip": True}),
        ]
        assert all(start - timedelta(seconds=5) <= e.at <= datetime.now(UTC) for e in entries)
        assert [e.action for e in await audit.recent(conn, 2)] == ["agent.password", "queue.put"]
    finally:
        await conn.close()
