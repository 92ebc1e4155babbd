"""The screen pop end to end: a SIP call through the service pops on the agent's
websocket with the customer record from PostgreSQL, before the phone rings; the
agent's form is stored."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry

from callcenter.call_side.service import Service
from callcenter.records.customers import import_customers
from callcenter.settings import Settings
from callcenter.sim.core import PhoneSpec, SimConfig
from callcenter.sim.driver import SimulatorDriver
from callcenter.sip.message import Address
from tests.helpers import FLOOR_PROCESS, authenticate, connected, free_port, scrape


async def test_pop_before_ring_one_with_the_customer_then_the_form_is_stored(tmp_path: Any) -> None:
    settings = Settings(
        service={"data_dir": str(tmp_path / "var"), "floor_process": FLOOR_PROCESS},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        agents=[{"id": "a001", "name": "Zhang Wei", "number": "007", "extension": "1001",
                 "password": "agent-pw", "ready_on_start": True}],
        queues=[{"name": "hotline", "numbers": ["4000"], "cadence": [0.2, 0.8]}],
    )  # fmt: skip
    service = Service(settings, registry=CollectorRegistry())
    await service.start()
    assert service.dsn and service.sip is not None
    async with connected(service.dsn) as conn:
        await import_customers(
            conn, "name,numbers,vip,notes\nHan Meimei,13812345678,yes,prefers WeChat\n"
        )
    http = f"http://{service.http_addresses[0]}"
    driver: SimulatorDriver | None = None
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{http}/api/login", json={"user_id": "a001", "password": "agent-pw"}
            ) as r:
                token = (await r.json())["token"]
            # Never in the URL: refused, and counted where the desktop runs.
            async with session.get(f"{http}/ws/agent?token={token}") as r:
                assert r.status == 400
            value = await scrape(session, service.http_addresses[0])
            refused = "callcenter_desktop_sockets_refused_total"
            assert value(refused, {"reason": "token-in-url"}) == 1
            async with session.ws_connect(f"{http}/ws/agent") as ws:
                await authenticate(ws, token)
                hello = json.loads((await ws.receive()).data)
                assert hello["state"] == "ready" and hello["agent"]["number"] == "007"
                host, port = next(iter(service.sip.transports.bound.values()))
                driver = SimulatorDriver(
                    SimConfig(service=Address(host, port), hotline="4000", call_rate=5.0, max_calls=1,
                              ring_cycle=1.0, answer_rings=(1.5, 1.6), talk_seconds=(0.5, 0.5),
                              abandon_share=0.0, caller_numbers=("+8613812345678",)),
                    [PhoneSpec("1001", "agent-pw")],
                    seed=1,
                )  # fmt: skip
                await driver.start()
                seen: list[dict[str, Any]] = []
                while not any(m["type"] == "call.ended" for m in seen):
                    seen.append(json.loads((await asyncio.wait_for(ws.receive(), 10)).data))
                kinds = [
                    (m["type"], m.get("scope"), m.get("ring"))
                    for m in seen
                    if m["type"] != "agent.state"
                ]
                assert kinds[0] == ("call.offered", None, 1)  # the pop comes first ...
                assert ("call.ring", "phone", 1) in kinds  # ... then the phone's ring 1
                pop = (
                    seen[0]
                    if seen[0]["type"] == "call.offered"
                    else next(m for m in seen if m["type"] == "call.offered")
                )
                assert pop["customer"]["name"] == "Han Meimei" and pop["customer"]["vip"] is True
                assert pop["greeting"] == "您好，客服中心007号为您服务"
                answered = next(m for m in seen if m["type"] == "call.answered")
                assert answered["rings"] == 2
                ended = next(m for m in seen if m["type"] == "call.ended")
                assert ended["hung_up_by"] == "caller"
                form = {"id": "form-e2e-0001", "call_id": pop["call_id"], "customer_id": pop["customer"]["id"],
                        "called_at": "2026-11-23T09:30:00+08:00", "category": "inquiry",
                        "service_requested": "opening hours", "read_back_done": True,
                        "satisfaction_asked": True, "satisfaction_score": 4}  # fmt: skip
                await ws.send_str(
                    json.dumps({"v": 1, "type": "form.submit", "ref": "f", "form": form})
                )
                while (reply := json.loads((await asyncio.wait_for(ws.receive(), 10)).data))[
                    "type"
                ] != "form.saved":
                    assert reply["type"] != "error", reply
        async with connected(service.dsn) as conn:
            row = await conn.fetchrow("SELECT * FROM call_forms WHERE id = 'form-e2e-0001'")
        assert row["agent_id"] == "a001" and row["satisfaction_score"] == 4
    finally:
        if driver is not None:
            await driver.stop()
        await service.stop()
