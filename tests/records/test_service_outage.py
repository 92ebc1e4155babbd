"""Calls through the whole service while PostgreSQL is stopped and restarted mid-burst."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry

from callcenter.call_side.service import Service
from callcenter.demo import DemoOptions, demo_settings
from callcenter.settings import Settings
from callcenter.sim.core import SimConfig
from callcenter.sim.driver import SimulatorDriver
from callcenter.sip.message import Address
from tests.helpers import free_port


async def test_every_call_is_recorded_exactly_once_with_its_events_in_order(
    own_postgres: Any, tmp_path: Any
) -> None:
    base = Settings(
        # One process: the test reads the records writer's own counters.
        service={"data_dir": str(tmp_path / "var"), "floor_process": False},
        database={"dsn": own_postgres.dsn},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        queues=[{"name": "hotline", "cadence": [0.1, 0.4], "wrap_up": 0.1, "setup_timeout": 1.0}],
    )
    settings, phones = demo_settings(base, DemoOptions(agents=4))
    service = Service(settings, registry=CollectorRegistry())
    await service.start()
    assert service.sip is not None and service.records is not None
    service.records.store.timeout = 1.0
    host, port = next(iter(service.sip.transports.bound.values()))
    driver = SimulatorDriver(
        SimConfig(
            service=Address(host, port), hotline="4000", call_rate=8.0, max_calls=40,
            ring_cycle=0.5, answer_rings=(0.2, 1.2), talk_seconds=(0.2, 0.5),
            abandon_share=0.2, patience_seconds=(0.2, 0.6),
        ),
        phones,
        seed=11,
    )  # fmt: skip
    await driver.start()
    sim = driver.sim
    assert sim is not None
    loop = asyncio.get_running_loop()
    try:
        while sim.stats.placed < 12:
            await asyncio.sleep(0.05)
        await asyncio.to_thread(own_postgres.stop)  # mid-burst
        waited = False  # the records waited in the journal for the database
        while sim.stats.placed < 28:
            waited = waited or (service.records.backlog and service.records.pending_bytes() > 0)
            await asyncio.sleep(0.05)
        await asyncio.to_thread(own_postgres.start)
        deadline = loop.time() + 40
        while loop.time() < deadline:
            s = sim.stats
            if (
                s.placed == 40
                and s.answered + s.abandoned + s.failed == 40
                and s.completed == s.answered
            ):
                break
            await asyncio.sleep(0.05)
        assert waited  # the outage was real
        conn = await asyncpg.connect(own_postgres.dsn)
        try:
            while loop.time() < deadline + 20:
                if (
                    service.records.pending_bytes() == 0
                    and await conn.fetchval("SELECT count(*) FROM calls WHERE ended_at IS NOT NULL")
                    == sim.stats.answered + sim.stats.abandoned
                ):
                    break
                await asyncio.sleep(0.1)
            assert await conn.fetchval("SELECT count(*) FROM calls") == 40
            answered = await conn.fetchval(
                "SELECT count(*) FROM calls WHERE answered_at IS NOT NULL"
            )
            assert answered == sim.stats.answered
            # Events of each call in order: queued first, ended last.
            rows = await conn.fetch(
                "SELECT call_id, array_agg(kind ORDER BY at, key) AS kinds FROM call_events"
                " WHERE call_id IS NOT NULL GROUP BY call_id"
            )
            assert len(rows) == 40
            for row in rows:
                kinds = list(row["kinds"])
                assert kinds[0] == "CallQueued", kinds
                assert kinds[-1] in ("CallEnded", "CallAbandoned"), kinds
            dupes = await conn.fetchval("SELECT count(*) - count(DISTINCT key) FROM call_events")
            assert dupes == 0
        finally:
            await conn.close()
    finally:
        await driver.stop()
        await service.stop()
