"""The supervisor's "today" figures come back from the database after a restart."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from callcenter.acd.events import CallAbandoned, CallAnswered, CallEnded, CallQueued
from callcenter.records.migrate import apply_migrations
from callcenter.records.stats import queue_stats
from callcenter.records.store import Store, to_record

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC).timestamp()


async def test_service_level_abandonment_and_asa(database: str) -> None:
    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    store = Store(database)
    events = []
    # Answered at 4 s (within target), at 18 s (outside), an abandon at 9 s, a short one at 2 s.
    for n, answer in ((1, 4.0), (2, 18.0)):
        events += [
            CallQueued(f"c{n}", "hotline", "1", 1),
            CallAnswered(f"c{n}", "hotline", "a1", f"l{n}", answer, 1, 1, answer < 15),
            CallEnded(f"c{n}", "hotline", "a1", "agent", 30.0),
        ]
    events += [
        CallQueued("c3", "hotline", "1", 1),
        CallAbandoned("c3", "hotline", 9.0, 2, "queued", None, False),
    ]
    events += [
        CallQueued("c4", "hotline", "1", 1),
        CallAbandoned("c4", "hotline", 2.0, 1, "queued", None, True),
    ]
    try:
        await store.write([to_record("b", i, T0 + i, e) for i, e in enumerate(events)])
        # A new process (the service restarted) reads the same figures.
        [stats] = await queue_stats(
            conn, datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)
        )
        assert (stats.offered, stats.answered, stats.abandoned, stats.short_abandons) == (
            4,
            2,
            2,
            1,
        )
        assert stats.answered_within_target == 1
        assert stats.service_level == pytest.approx(1 / 3)
        assert stats.abandonment_rate == pytest.approx(1 / 3)
        assert stats.asa_seconds == pytest.approx(11.0)
        assert (
            await queue_stats(
                conn, datetime(2026, 11, 24, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC)
            )
            == []
        )
    finally:
        await store.close()
        await conn.close()
