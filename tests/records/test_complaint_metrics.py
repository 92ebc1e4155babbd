"""The complaints' gauges read from PostgreSQL: by class and kind, the last
reading kept (and aged) when the database fails, no samples before the first."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry

from callcenter.casework.complaints import CallBack, ComplaintClass
from callcenter.metrics.complaints import ComplaintMetrics
from callcenter.records.complaints import change_complaint, receive_complaint
from callcenter.records.migrate import apply_migrations

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)


async def test_open_and_overdue_complaints_and_follow_ups_due_on_metrics(database: str) -> None:
    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    pool = await asyncpg.create_pool(database, min_size=1, max_size=1)
    clock = {"now": T0 + 25 * H, "mono": 100.0}
    broken = {"on": False}

    async def get_pool() -> Any:
        if broken["on"]:
            raise OSError("connection refused")
        return pool

    metrics = ComplaintMetrics(
        get_pool, now=lambda: clock["now"], monotonic=lambda: clock["mono"], timeout=5.0
    )
    registry = CollectorRegistry()
    registry.register(metrics)

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    try:
        assert sample("callcenter_complaints_open", **{"class": "invalid"}) is None  # not read yet
        for cls in (ComplaintClass.INVALID, ComplaintClass.INVALID, ComplaintClass.VALID):
            await receive_complaint(
                conn, matter="noise", received_at=T0, reported_by="a001", complaint_class=cls
            )
        # One invalid complaint reached in time: no longer overdue, nor its call-back due.
        await change_complaint(conn, 1, CallBack(reached=True), "sup", T0 + 2 * H)
        await conn.execute("INSERT INTO follow_ups (kind, due_at) VALUES ('reply', $1)", T0)
        await metrics.read()
        assert sample("callcenter_complaints_open", **{"class": "invalid"}) == 2
        assert sample("callcenter_complaints_open", **{"class": "valid"}) == 1
        assert sample("callcenter_complaints_open", **{"class": "serious"}) == 0
        # An invalid complaint untouched for 25 h is overdue; the valid one is not yet.
        assert sample("callcenter_complaints_overdue", **{"class": "invalid"}) == 1
        assert sample("callcenter_complaints_overdue", **{"class": "valid"}) == 0
        assert sample("callcenter_followups_due", kind="call-back") == 1
        assert sample("callcenter_followups_due", kind="reply") == 1
        assert sample("callcenter_complaints_read_age_seconds") == 0
        assert sample("callcenter_complaints_read_failures_total") == 0

        # The database goes away: the last reading stays, older, and the failure counts.
        broken["on"] = True
        clock["mono"] += 30
        await metrics.read()
        assert sample("callcenter_complaints_overdue", **{"class": "invalid"}) == 1
        assert sample("callcenter_complaints_read_age_seconds") == 30
        assert sample("callcenter_complaints_read_failures_total") == 1
        broken["on"] = False
        clock["now"] = T0 + 80 * H
        await metrics.read()
        assert sample("callcenter_complaints_overdue", **{"class": "valid"}) == 1
        assert sample("callcenter_complaints_read_age_seconds") == 0
    finally:
        await pool.close()
        await conn.close()


async def test_the_reader_runs_on_its_interval_and_stops(database: str) -> None:
    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    await conn.close()
    pool = await asyncpg.create_pool(database, min_size=1, max_size=1)
    reads = []

    async def get_pool() -> Any:
        reads.append(1)
        return pool

    metrics = ComplaintMetrics(
        get_pool, now=lambda: T0, monotonic=lambda: 0.0, interval=0.05, timeout=5.0
    )
    try:
        metrics.start()
        await asyncio.sleep(0.3)
        await metrics.stop()
        done = len(reads)
        assert done >= 2 and metrics.last is not None
        await asyncio.sleep(0.15)
        assert len(reads) == done  # stopped
    finally:
        await pool.close()
