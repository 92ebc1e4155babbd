"""`callcenter demo`: the service in standalone mode with simulated traffic.

Everything is real SIP over loopback: simulated agent phones register with the
service (digest), simulated callers dial the hotline, the ACD rings the phones,
and they answer after a random number of rings or the callers give up. It is
what a newcomer runs to see the service work, with nothing else installed.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog

from .call_side.service import Service, run
from .settings import Settings
from .sim.core import PhoneSpec, SimConfig
from .sim.driver import SimulatorDriver
from .sip.message import Address

__all__ = ["DemoOptions", "demo_settings", "run_demo"]

log = structlog.get_logger("callcenter.demo")


@dataclass(frozen=True, slots=True)
class DemoOptions:
    agents: int = 5
    call_rate: float = 0.3
    abandon_share: float = 0.15
    hotline: str = "4000"
    seed: int | None = None


def demo_settings(base: Settings, options: DemoOptions) -> tuple[Settings, list[PhoneSpec]]:
    """`base` in standalone mode with simulated agents whose phones register to it."""
    phones = [
        PhoneSpec(extension=f"{1001 + n}", password=secrets.token_urlsafe(12))
        for n in range(options.agents)
    ]
    agents = [
        {
            "id": f"a{n + 1:03d}",
            "name": f"Agent {n + 1:03d}",
            "number": f"{n + 1:03d}",
            "extension": phone.extension,
            "password": phone.password,
            "groups": {"service": 1},
            "ready_on_start": True,
        }
        for n, phone in enumerate(phones)
    ]
    data = base.model_dump(mode="python")
    data["accounts"] = [
        {**a, "password": acc.password.get_secret_value()}
        for a, acc in zip(data["accounts"], base.accounts, strict=True)
    ]
    data["acd"] = {**data["acd"], "mode": "standalone"}
    supervisor = {"id": "sup", "name": "Supervisor", "password": secrets.token_urlsafe(9)}
    data["desktop"] = {**data["desktop"], "supervisors": [supervisor]}
    data["agents"] = agents
    # Simulated agents sometimes let it ring past agent_ring_limit (the ACD then
    # tries the next agent); three misses in a row are needed to sit one out.
    data["queues"] = [
        {**data["queues"][0], "numbers": [options.hotline], "wrap_up": 3.0, "max_no_answer": 3}
    ]
    return Settings(**data), phones


async def run_demo(base: Settings, options: DemoOptions) -> int:
    settings, phones = demo_settings(base, options)

    @contextlib.asynccontextmanager
    async def simulator(service: Service) -> AsyncIterator[object]:
        assert service.sip is not None
        host, port = next(iter(service.sip.transports.bound.values()))
        cycle = service.sip.core.acd.queues[settings.queues[0].name].cadence.cycle
        driver = SimulatorDriver(
            SimConfig(
                service=Address(host, port),
                hotline=options.hotline,
                call_rate=options.call_rate,
                ring_cycle=cycle,
                answer_rings=(0.2, 2.2),
                abandon_share=options.abandon_share,
            ),
            phones,
            seed=options.seed,
        )
        await driver.start()
        http = service.http_addresses[0]
        print(
            f"\ncallcenter demo: {options.agents} simulated agents, "
            f"{options.call_rate:g} calls/s to sip:{options.hotline}@{host}:{port}\n"
            f"  agent desktop:    http://{http}/agent  (log in as a001 / {phones[0].password})\n"
            f"  supervisor board: http://{http}/supervisor  (sup / "
            f"{settings.desktop.supervisors[0].password.get_secret_value()})\n"
            f"  health:  http://{http}/healthz\n"
            f"  metrics: http://{http}/metrics\n"
            "  Ctrl-C to stop.\n",
            flush=True,
        )
        try:
            yield driver
        finally:
            await driver.stop()
            if driver.sim is not None:
                log.info("simulator stopped", **_stats(driver))

    return await run(settings, companion=simulator)


def _stats(driver: SimulatorDriver) -> dict[str, int]:
    assert driver.sim is not None
    s = driver.sim.stats
    return {
        "placed": s.placed,
        "answered": s.answered,
        "abandoned": s.abandoned,
        "failed": s.failed,
        "completed": s.completed,
    }
