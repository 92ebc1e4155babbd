"""The embedded PostgreSQL stopped for good under the running service (as after
a crash recovery that a full disk made fail) is started again by the service,
and every call's records reach it without a restart of the service."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg
import psutil
import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from callcenter.call_side.service import Service
from callcenter.demo import DemoOptions, demo_settings
from callcenter.settings import Settings
from callcenter.sim.core import SimConfig
from callcenter.sim.driver import SimulatorDriver
from callcenter.sip.message import Address
from tests.helpers import free_port

CALLS = 16


async def test_a_stopped_embedded_postgres_is_started_again_and_gets_every_record(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base = Settings(
        service={"data_dir": str(tmp_path / "var"), "floor_process": False},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        queues=[{"name": "hotline", "cadence": [0.1, 0.4], "wrap_up": 0.1, "setup_timeout": 1.0}],
    )
    settings, phones = demo_settings(base, DemoOptions(agents=4))
    service = Service(settings, registry=CollectorRegistry())
    with capture_logs() as logs:
        await service.start()
        assert service.sip is not None and service.records is not None
        service.records.store.timeout = 1.0
        service.records._retry = (0.2, 1.0)
        host, port = next(iter(service.sip.transports.bound.values()))
        driver = SimulatorDriver(
            SimConfig(
                service=Address(host, port), hotline="4000", call_rate=4.0, max_calls=CALLS,
                ring_cycle=0.5, answer_rings=(0.2, 1.2), talk_seconds=(0.2, 0.5),
                abandon_share=0.2, patience_seconds=(0.2, 0.6),
            ),
            phones,
            seed=5,
        )  # fmt: skip
        pgdata = Path(service.dsn.partition("host=")[2])  # its socket is in its data directory
        postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
        await driver.start()
        sim = driver.sim
        assert sim is not None
        loop = asyncio.get_running_loop()
        try:
            while sim.stats.placed < 4:
                await asyncio.sleep(0.05)
            # The server cannot start again for now (a full disk refuses its
            # recovery; here its directory refuses the lock file), and stops:
            # an immediate shutdown, what a failed recovery ends with.
            pgdata.chmod(0o500)
            postmaster.send_signal(signal.SIGQUIT)
            await asyncio.to_thread(postmaster.wait, 10)
            metrics = service.registry.get_sample_value
            deadline = loop.time() + 20
            while metrics("callcenter_database_embedded_restart_failures_total") in (None, 0.0):
                assert loop.time() < deadline, "no attempt to start the database again"
                await asyncio.sleep(0.1)
            assert metrics("callcenter_database_embedded_up") == 0.0
            pgdata.chmod(0o700)  # the disk takes writes again
            deadline = loop.time() + 60
            while not (
                sim.stats.placed == CALLS
                and sim.stats.completed == sim.stats.answered
                and sim.stats.answered + sim.stats.abandoned + sim.stats.failed == CALLS
            ):
                assert loop.time() < deadline, sim.stats
                await asyncio.sleep(0.1)  # fmt: skip
            ended = sim.stats.answered + sim.stats.abandoned
            counted = -1
            while loop.time() < deadline:
                try:
                    conn = await asyncpg.connect(service.dsn, timeout=2)
                except (OSError, asyncpg.PostgresError):
                    await asyncio.sleep(0.2)
                    continue
                try:
                    counted = await conn.fetchval(
                        "SELECT count(*) FROM calls WHERE ended_at IS NOT NULL"
                    )
                finally:
                    await conn.close()
                if counted == ended and service.records.pending_bytes() == 0:
                    break
                await asyncio.sleep(0.2)
            assert counted == ended, (counted, ended)
            assert metrics("callcenter_database_embedded_up") == 1.0
            assert metrics("callcenter_database_embedded_restarts_total") == 1.0
        finally:
            pgdata.chmod(0o700)
            await driver.stop()
            await service.stop()
    events = [e["event"] for e in logs]
    assert "embedded database stopped; starting it again" in events
    assert "embedded database started again" in events
    (failed, *_) = [e for e in logs if e["event"] == "embedded database did not start; retrying"]
    # Why, from PostgreSQL's log (pg_ctl's failure, or pgserver's while the old
    # postmaster is not reaped yet, varies with the system's reaper of orphans).
    assert failed["error"] and failed["postgres_log"], failed
    # Said once, by the service: pgserver's own lines (its pg_ctl's whole output,
    # the whole of PostgreSQL's log) are left out.
    assert [r.getMessage()[:40] for r in caplog.records if r.name == "pgserver"] == []
