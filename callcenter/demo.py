"""`callcenter demo`: the service in standalone mode with simulated traffic.

Everything is real SIP over loopback: simulated agent phones register with the
service (digest), simulated callers dial the hotline, the ACD rings the phones,
and they answer after a random number of rings or the callers give up. It is
what a newcomer runs to see the service work, with nothing else installed.

The load matches the agents: by default each agent gets `RATE_PER_AGENT` new
callers a second. A call holds its agent for about 21 s (ringing about 1.2
rings of 5 s, talk 5-20 s, wrap-up 3 s), so that is about 0.55 Erlang per
agent: with five agents Erlang C gives about one caller in seven waiting for
an agent, a few of them past three rings, so the board shows a healthy floor
with some breaches rather than a queue that only grows. A few customers are
seeded (`DEMO_CUSTOMERS`, once: not again if their numbers are on file), two
with an open complaint, and a share of callers ring from their numbers, so
pops show a customer record and, as the demo runs, their history.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import asyncpg
import structlog

from .call_side.service import Service, run
from .records.customers import import_customers
from .records.forms import CallForm, ComplaintClass, save_form
from .settings import Settings
from .sim.core import PhoneSpec, SimConfig
from .sim.driver import SimulatorDriver
from .sip.message import Address

__all__ = [
    "ANSWER_RINGS",
    "DEMO_CUSTOMERS",
    "RATE_PER_AGENT",
    "DemoOptions",
    "demo_settings",
    "run_demo",
    "seed_customers",
]

log = structlog.get_logger("callcenter.demo")


#: New callers a second per agent, by default (the module's docstring says why).
RATE_PER_AGENT: Final = 0.026

#: The customers the demo seeds (CSV, as `callcenter import-customers` reads it).
DEMO_CUSTOMERS: Final = """name,numbers,address,vip,notes
韩梅梅,13800000001,北京市朝阳区建国路 88 号 3 单元 1201,yes,业主，常报修
李雷,13800000002,北京市海淀区中关村大街 1 号,no,
王芳,13800000003;01065550003,上海市浦东新区世纪大道 100 号,no,喜欢电话回访
张伟,13800000004,广州市天河区体育西路 191 号,no,
刘洋,13800000005,深圳市南山区科技园南区,yes,
陈静,13800000006,杭州市西湖区文三路 398 号,no,
"""
#: Seeded customers with an open complaint: (number, matter, class).
_COMPLAINTS: Final = (
    ("13800000001", "维修人员上门迟到两个小时", ComplaintClass.VALID),
    ("13800000003", "电梯三天内第二次故障", ComplaintClass.SERIOUS),
)
#: Simulated phones answer after this many rings (uniformly).
ANSWER_RINGS: Final = (0.2, 2.2)
#: The share of the demo's callers who are seeded customers calling again.
RETURNING_SHARE: Final = 0.3


@dataclass(frozen=True, slots=True)
class DemoOptions:
    agents: int = 5
    call_rate: float | None = None  # None: RATE_PER_AGENT for each agent
    abandon_share: float = 0.15
    hotline: str = "4000"
    seed: int | None = None

    @property
    def rate(self) -> float:
        return self.call_rate if self.call_rate is not None else RATE_PER_AGENT * self.agents


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
                call_rate=options.rate,
                ring_cycle=cycle,
                answer_rings=ANSWER_RINGS,
                abandon_share=options.abandon_share,
                returning_callers=_demo_numbers(),
                returning_share=RETURNING_SHARE,
            ),
            phones,
            seed=options.seed,
        )
        if service.dsn:
            await seed_customers(service.dsn)
        await driver.start()
        http = service.http_addresses[0]
        print(
            f"\ncallcenter demo: {options.agents} simulated agents, "
            f"{options.rate:g} calls/s to sip:{options.hotline}@{host}:{port}\n"
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


def _demo_numbers() -> tuple[str, ...]:
    return tuple(
        number
        for line in DEMO_CUSTOMERS.splitlines()[1:]
        for number in line.split(",")[1].split(";")
        if number.startswith("138")
    )


async def seed_customers(dsn: str) -> bool:
    """The demo's customers and their open complaints, unless they are on file
    already (a second run keeps what the first made); False when they were. A
    database that cannot be reached is logged: the demo runs without them."""
    try:
        conn = await asyncpg.connect(dsn, timeout=10)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        log.warning("demo customers not seeded", error=str(exc))
        return False
    try:
        if await conn.fetchval(
            "SELECT count(*) FROM customer_numbers WHERE number = ANY($1)",
            [f"+86{n}" for n in _demo_numbers()],
        ):
            return False
        await import_customers(conn, DEMO_CUSTOMERS)
        now = datetime.now(UTC)
        for n, (number, matter, complaint_class) in enumerate(_COMPLAINTS):
            customer_id = await conn.fetchval(
                "SELECT customer_id FROM customer_numbers WHERE number = $1", f"+86{number}"
            )
            form = CallForm(
                id=f"demo-complaint-{n + 1}-{secrets.token_hex(4)}",
                agent_id="a001",
                customer_id=customer_id,
                called_at=now - timedelta(hours=20 - 6 * n),
                category="complaint",
                complaint_matter=matter,
                complaint_class=complaint_class,
                complaint_occurred_at=now - timedelta(days=1),
            )
            await save_form(conn, form)
        log.info("demo customers seeded", customers=len(_demo_numbers()))
        return True
    except (OSError, asyncpg.PostgresError, ValueError) as exc:
        log.warning("demo customers not seeded", error=str(exc))
        return False
    finally:
        await conn.close()


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
