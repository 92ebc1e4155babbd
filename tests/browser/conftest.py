"""The service the browser tests drive: one agent, one supervisor, one customer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from callcenter.call_side.service import Service
from callcenter.records.customers import import_customers
from callcenter.settings import Settings
from tests.helpers import FLOOR_PROCESS, connected, free_port


@pytest.fixture
def hotline() -> dict[str, Any]:
    """More settings of the queue "hotline" (a test module overrides this fixture)."""
    return {}


@pytest.fixture
async def service(tmp_path: Path, hotline: dict[str, Any]) -> Any:
    settings = Settings(
        service={"data_dir": str(tmp_path / "var"), "floor_process": FLOOR_PROCESS},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        agents=[{"id": "a001", "name": "Zhang Wei", "number": "007", "extension": "1001",
                 "password": "agent-pw"}],
        queues=[{"name": "hotline", "numbers": ["4000"], "cadence": [0.4, 1.6], "wrap_up": 1.0,
                 "greeting": "您好，欢迎致电XXX公司，我是{name}，工号{number}", **hotline}],
        callbacks={"refresh_seconds": 0.5},
        desktop={"supervisors": [{"id": "sup", "name": "Supervisor", "password": "sup-pw"}],
                 "repair_prices": [{"item": "Tap replaced", "price": 50.0},
                                   {"item": "Boiler serviced", "price": 120.5}]},
    )  # fmt: skip
    svc = Service(settings, registry=CollectorRegistry())
    await svc.start()
    assert svc.dsn
    async with connected(svc.dsn) as conn:
        await import_customers(
            conn, "name,numbers,vip,notes\nHan Meimei,13812345678,yes,prefers mornings\n"
        )
    try:
        yield svc
    finally:
        await svc.stop()
