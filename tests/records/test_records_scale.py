"""bench/records_scale.py's history and measurements, at a tiny scale, so they do not rot.

The run that counts (10 million calls, docs/performance.md) is on demand; this checks
that the generated history is what the benchmark says it is (the outcomes in their
proportions, each answered call with its ring attempt, its agent's state changes and
the events the reports read) and that every measurement runs on it and finds it.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from zoneinfo import ZoneInfo

import asyncpg

from callcenter.records.customers import CustomerDirectory
from callcenter.records.stats import agent_stats, queue_stats
from callcenter.reports.period import month

BENCH = Path(__file__).resolve().parent.parent.parent / "bench"
ZONE = "Asia/Shanghai"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_scale_under_test", BENCH / "_scale.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


scale = _load()


async def test_a_tiny_history_is_as_described_and_every_measurement_reads_it(
    database: str,
) -> None:
    now = datetime(2026, 12, 7, 17, 0, tzinfo=ZoneInfo(ZONE)).astimezone(UTC)
    today = datetime(2026, 12, 7, tzinfo=ZoneInfo(ZONE))
    size = scale.Scale(calls=4000, customers=300, days=62, today=300, agents=10)
    conn = await asyncpg.connect(database)
    try:
        await scale.apply_migrations(conn)
        await scale.generate(conn, size, ZONE, now)
        outcomes = dict(await conn.fetch("SELECT outcome, count(*) FROM calls GROUP BY 1"))
        assert sum(outcomes.values()) == 4300
        assert 0.80 < outcomes["answered"] / 4300 < 0.90
        assert 0.04 < (outcomes["abandoned"] + outcomes["short-abandon"]) / 4300 < 0.12
        assert {"overflow", "pbx-timeout", "closed", "no-agent", "rejected"} <= outcomes.keys()
        first = await conn.fetchval("SELECT min(arrived_at) FROM calls")
        assert today - timedelta(days=62) <= first < today - timedelta(days=61)
        today_calls = await conn.fetchval(
            "SELECT count(*) FROM calls WHERE arrived_at >= $1", today
        )
        assert today_calls == 300
        # Each answered call: its answered offer, four state changes of its agent, its
        # CallEnded with the talk, the change out of wrap-up with its seconds.
        per_call = await conn.fetchrow(
            """SELECT count(*) FILTER (WHERE NOT EXISTS (
                          SELECT 1 FROM ring_attempts r WHERE r.call_id = c.call_id
                             AND r.outcome = 'answered' AND r.agent_id = c.agent_id))
                        AS without_offer,
                      count(*) FILTER (WHERE NOT EXISTS (
                          SELECT 1 FROM call_events e WHERE e.call_id = c.call_id
                             AND e.kind = 'CallEnded'
                             AND (e.data->>'talk_seconds')::float8 = c.talk_seconds))
                        AS without_end
                 FROM calls c WHERE c.outcome = 'answered'"""
        )
        assert dict(per_call) == {"without_offer": 0, "without_end": 0}
        wrap_ups = await conn.fetchval(
            """SELECT count(*) FROM agent_state_history h JOIN call_events e ON e.key = h.key
                WHERE h.previous = 'wrap-up' AND (e.data->>'seconds')::float8 >= 10"""
        )
        assert wrap_ups == outcomes["answered"]
        assert await conn.fetchval("SELECT count(*) FROM customer_numbers") == 400
        assert set(await conn.fetchval("SELECT array_agg(DISTINCT category) FROM call_forms")) == {
            "inquiry", "repair", "complaint", "suggestion", "other",
        }  # fmt: skip
        assert await conn.fetchval("SELECT count(*) FROM complaints") > 0
        assert await conn.fetchval("SELECT count(*) FROM callback_attempts") > 0
        # The board's today: every agent answered and was ready some of the day.
        agents = [f"a{i:03d}" for i in range(1, 11)]
        queues = await queue_stats(conn, today, now)
        assert sum(q.offered for q in queues) > 250
        stats = await agent_stats(conn, today, now, agents)
        assert [a.agent_id for a in stats] == agents
        assert all(a.handled > 0 and a.idle_seconds > 0 for a in stats)
        # The report's parts (or gather) and the screen pop find the history.
        parts = await scale.report(conn, month(2026, 11, ZONE), now, agents)
        assert scale.gather is not None or "agent_stats" in parts
        lookups = await scale.measure_lookup(database, ["+8613800000007"], 2)
        assert len(lookups) == 2
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(database, min_size=1, max_size=1)
    try:
        customer = await CustomerDirectory(pool).lookup("13800000007")
        assert customer is not None and customer.name == "Customer 7"
        assert customer.numbers == ("+8613800000007",) and customer.recent_calls
    finally:
        await pool.close()
