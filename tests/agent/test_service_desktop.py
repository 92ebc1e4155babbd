"""The screen pop end to end: a SIP call through the service pops on the agent's
websocket with the customer record from PostgreSQL, before any message of the phone's rings; the
agent's form is stored."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
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


async def agent_token(session: aiohttp.ClientSession, http: str) -> str:
    async with session.post(
        f"{http}/api/login", json={"user_id": "a001", "password": "agent-pw"}
    ) as r:
        token: str = (await r.json())["token"]
    return token


async def two_calls_from(service: Service, caller: str) -> SimulatorDriver:
    """Two calls from `caller`, the second while the first is on, to phone 1001,
    which answers each after 1.2 rings (of 1 s) and talks 0.3 s."""
    assert service.sip is not None
    host, port = next(iter(service.sip.transports.bound.values()))
    driver = SimulatorDriver(
        SimConfig(service=Address(host, port), hotline="4000", call_rate=20.0, max_calls=2,
                  ring_cycle=1.0, answer_rings=(1.2, 1.3), talk_seconds=(0.3, 0.3),
                  abandon_share=0.0, caller_numbers=(caller,)),
        [PhoneSpec("1001", "agent-pw")],
        seed=1,
    )  # fmt: skip
    await driver.start()
    return driver


async def receive_until(ws: Any, kind: str, seen: list[dict[str, Any]] | None = None) -> Any:
    """Messages until one of `kind` (an error fails the test); the others into `seen`."""
    while True:
        message = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
        assert message["type"] != "error", message
        if message["type"] == kind:
            return message
        if seen is not None:
            seen.append(message)


async def drain(ws: Any, seconds: float) -> list[dict[str, Any]]:
    """What comes in `seconds` of quiet at most."""
    out = []
    try:
        while True:
            out.append(json.loads((await asyncio.wait_for(ws.receive(), seconds)).data))
    except TimeoutError:
        return out


async def test_the_record_holds_the_wrap_up_files_a_new_customer_and_pops_next_time(
    tmp_path: Any,
) -> None:
    """An unknown caller rings twice. The queue keeps its agent in wrap-up until the
    record of the first call is saved; the record makes the caller a customer; the
    second call pops with that customer, the first call in their history and the
    promised reply, though the first pop looked the caller up a moment ago (the
    look-up is cached for 30 s: saving the record forgets it)."""
    settings = Settings(
        service={"data_dir": str(tmp_path / "var"), "floor_process": FLOOR_PROCESS},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        desktop={"closing": "感谢您的来电，再见！", "repair_prices": [{"item": "tap", "price": 50}]},
        agents=[{"id": "a001", "name": "Zhang Wei", "number": "007", "extension": "1001",
                 "password": "agent-pw", "ready_on_start": True}],
        queues=[{"name": "hotline", "numbers": ["4000"], "cadence": [0.2, 0.8],
                 "wrap_up": 0.5, "wrap_up_until_record": True, "wrap_up_record_limit": 60,
                 "greeting": "欢迎致电XXX公司，我是{name}"}],
    )  # fmt: skip
    service = Service(settings, registry=CollectorRegistry())
    await service.start()
    assert service.dsn and service.sip is not None
    http = f"http://{service.http_addresses[0]}"
    driver: SimulatorDriver | None = None
    try:
        async with aiohttp.ClientSession() as session:
            token = await agent_token(session, http)
            ws = await session.ws_connect(f"{http}/ws/agent")
            await authenticate(ws, token)
            hello = await receive_until(ws, "hello")
            assert hello["records_pending"] == []
            assert hello["sop"]["closing"] == "感谢您的来电，再见！"
            assert hello["sop"]["repair_prices"] == [{"item": "tap", "price": 50.0}]
            driver = await two_calls_from(service, "+8613912345678")
            first = await receive_until(ws, "call.offered")
            assert first["customer"] is None  # nobody on file (and cached so for 30 s)
            assert first["greeting"] == "欢迎致电XXX公司，我是Zhang Wei"
            await receive_until(ws, "call.ended")
            # Far past wrap_up: the second caller waits for the record of the first call.
            quiet = await drain(ws, 1.5)
            assert not any(m["type"] == "call.offered" for m in quiet), quiet
            # A page opened now lists the call awaiting its record.
            await ws.close()
            ws = await session.ws_connect(f"{http}/ws/agent")
            await authenticate(ws, token)
            hello = await receive_until(ws, "hello")
            assert hello["state"] == "wrap-up" and hello["calls"] == []
            [pending] = hello["records_pending"]
            assert (pending["call_id"], pending["customer"]) == (first["call_id"], None)
            assert pending["ended_at"] >= pending["answered_at"]
            async with connected(service.dsn) as conn:  # another agent's call, in the records
                await conn.execute(
                    "INSERT INTO calls (call_id, queue, caller, arrived_at)"
                    " VALUES ('theirs', 'hotline', '13800000000', now())"
                )
                await conn.execute(
                    "INSERT INTO ring_attempts (leg_id, call_id, agent_id, offered_at)"
                    " VALUES ('their-leg', 'theirs', 'a002', now())"
                )
            record = {"id": "form-first-call", "call_id": first["call_id"],
                      "customer_id": 424242,  # not the caller's: ignored
                      "caller_name": "Wang Fang", "address": "Room 5, Bldg 2",
                      "called_at": "2026-11-23T09:30:00+08:00", "category": "complaint",
                      "complaint_matter": "no hot water", "complaint_class": "serious",
                      "promise_due_at": "2026-11-24T18:00:00+08:00",
                      "promise_text": "the repair team replies by tomorrow evening"}  # fmt: skip
            other = {**record, "id": "form-their-call", "call_id": "theirs"}
            await ws.send_str(json.dumps({"v": 1, "type": "form.submit", "form": other}))
            refused = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
            assert refused["code"] == "invalid-form" and "not offered to a001" in refused["message"]
            await ws.send_str(json.dumps({"v": 1, "type": "form.submit", "form": record}))
            saved = await receive_until(ws, "form.saved")
            assert saved["customer_id"] is not None and saved["follow_up_id"] is not None
            # The record ends the wrap-up: the second call pops, with its customer.
            second = await receive_until(ws, "call.offered")
            customer = second["customer"]
            assert customer is not None and customer["id"] == saved["customer_id"]
            assert (customer["name"], customer["numbers"]) == ("Wang Fang", ["+8613912345678"])
            assert first["call_id"] in [c["call_id"] for c in customer["recent_calls"]]
            assert [c["class"] for c in customer["open_complaints"]] == ["serious"]
            assert ("reply", "the repair team replies by tomorrow evening") in [
                (f["kind"], f["notes"]) for f in customer["follow_ups"]
            ]
            await ws.send_str(json.dumps({"v": 1, "type": "customer.update", "ref": "u",
                                          "customer_id": customer["id"],
                                          "name": "Wang Fang (Ms)"}))  # fmt: skip
            updated = await receive_until(ws, "customer.updated")
            assert updated["customer"]["name"] == "Wang Fang (Ms)"
            await ws.close()
        async with connected(service.dsn) as conn:
            filed = await conn.fetchval(
                "SELECT customer_id FROM call_forms WHERE id = 'form-first-call'"
            )
            audit = await conn.fetchrow("SELECT actor, action, target FROM audit_log")
        assert filed == saved["customer_id"]
        assert tuple(audit) == ("a001", "customer.edit", str(filed))
    finally:
        if driver is not None:
            await driver.stop()
        await service.stop()


async def test_a_caller_who_rings_again_at_once_pops_with_the_call_a_moment_ago(
    tmp_path: Any,
) -> None:
    """The look-up behind a pop is cached for 30 s; a caller's is forgotten when their
    call ends, so the next pop shows that call in their history (it did not)."""
    settings = Settings(
        service={"data_dir": str(tmp_path / "var"), "floor_process": FLOOR_PROCESS},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        agents=[{"id": "a001", "name": "Zhang Wei", "number": "007", "extension": "1001",
                 "password": "agent-pw", "ready_on_start": True}],
        queues=[{"name": "hotline", "numbers": ["4000"], "cadence": [0.2, 0.8], "wrap_up": 0.5}],
    )  # fmt: skip
    service = Service(settings, registry=CollectorRegistry())
    await service.start()
    assert service.dsn and service.sip is not None
    async with connected(service.dsn) as conn:
        await import_customers(conn, "name,numbers\nHan Meimei,13812345678\n")
    http = f"http://{service.http_addresses[0]}"
    driver: SimulatorDriver | None = None
    try:
        async with aiohttp.ClientSession() as session:
            token = await agent_token(session, http)
            async with session.ws_connect(f"{http}/ws/agent") as ws:
                await authenticate(ws, token)
                await receive_until(ws, "hello")
                driver = await two_calls_from(service, "+8613812345678")
                first = await receive_until(ws, "call.offered")
                assert first["customer"]["name"] == "Han Meimei"
                await receive_until(ws, "call.ended")
                second = await receive_until(ws, "call.offered")
                history = [c["call_id"] for c in second["customer"]["recent_calls"]]
                assert first["call_id"] in history, history
    finally:
        if driver is not None:
            await driver.stop()
        await service.stop()


async def test_the_agents_day_shows_a_call_answered_and_one_missed_and_the_record_missing(
    tmp_path: Any,
) -> None:
    """`agent.day` on a running service: the agent answers a call and lets the next one
    ring past the ring limit; the day lists both, counts one handled and one missed,
    and shows the answered call without its record until the record is saved."""
    settings = Settings(
        service={"data_dir": str(tmp_path / "var"), "floor_process": FLOOR_PROCESS},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        agents=[{"id": "a001", "name": "Zhang Wei", "number": "007", "extension": "1001",
                 "password": "agent-pw", "ready_on_start": True}],
        queues=[{"name": "hotline", "numbers": ["4000"], "cadence": [0.2, 0.8], "wrap_up": 0.5,
                 "agent_ring_limit": 2}],
    )  # fmt: skip
    service = Service(settings, registry=CollectorRegistry())
    await service.start()
    assert service.dsn and service.sip is not None
    async with connected(service.dsn) as conn:
        await import_customers(conn, "name,numbers\nHan Meimei,13812345678\n")
    host, port = next(iter(service.sip.transports.bound.values()))
    http = f"http://{service.http_addresses[0]}"

    def one_call(caller: str, answer_rings: float) -> SimulatorDriver:
        return SimulatorDriver(
            SimConfig(service=Address(host, port), hotline="4000", call_rate=20.0, max_calls=1,
                      ring_cycle=1.0, answer_rings=(answer_rings, answer_rings),
                      talk_seconds=(0.3, 0.3), abandon_share=0.0, caller_numbers=(caller,)),
            [PhoneSpec("1001", "agent-pw")],
            seed=1,
        )  # fmt: skip

    async def day(ws: Any, until: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """`agent.day` until it says what `until` wants (the records are written from
        the journal a moment after the events), for 5 s at most."""
        for _ in range(25):
            await ws.send_str(json.dumps({"v": 1, "type": "agent.day", "ref": "d"}))
            reply: dict[str, Any] = await receive_until(ws, "agent.day")
            assert reply["ref"] == "d"
            if until(reply):
                return reply
            await asyncio.sleep(0.2)
        raise AssertionError(reply)

    drivers: list[SimulatorDriver] = []
    try:
        async with aiohttp.ClientSession() as session:
            token = await agent_token(session, http)
            async with session.ws_connect(f"{http}/ws/agent") as ws:
                await authenticate(ws, token)
                await receive_until(ws, "hello")
                empty = await day(ws, lambda d: True)
                assert (empty["offers"], empty["handled"], empty["missed"]) == ([], 0, 0)
                assert empty["aht_seconds"] is None and empty["day_started"] <= time.time()

                drivers.append(one_call("+8613812345678", 1.2))  # answered in ring 2
                await drivers[-1].start()
                answered = await receive_until(ws, "call.offered")
                await receive_until(ws, "call.ended")
                while (await receive_until(ws, "agent.state"))["state"] != "ready":
                    pass  # wrap-up, then ready
                await drivers[-1].stop()
                drivers.append(one_call("+8613900000002", 9.0))  # rings past ring 2
                await drivers[-1].start()
                missed = await receive_until(ws, "call.offered")
                ended = await receive_until(ws, "call.offer_ended")
                assert (ended["call_id"], ended["outcome"]) == (missed["call_id"], "missed")

                seen = await day(ws, lambda d: (d["handled"], d["missed"]) == (1, 1))
                offers = [(o["call_id"], o["outcome"], o["recorded"]) for o in seen["offers"]]
                assert offers == [  # newest first
                    (missed["call_id"], "missed", False),
                    (answered["call_id"], "answered", False),
                ]
                first = seen["offers"][1]
                assert (first["caller"], first["customer_name"]) == ("+8613812345678", "Han Meimei")
                assert seen["offers"][0]["customer_name"] is None
                assert first["talk_seconds"] == pytest.approx(0.3, abs=0.2)
                assert seen["without_record"] == 1 and seen["finished"] == 1
                assert seen["wrap_up_seconds"] == pytest.approx(0.5, abs=0.3)
                assert seen["aht_seconds"] == pytest.approx(
                    first["talk_seconds"] + seen["wrap_up_seconds"]
                )

                form = {"id": "form-day-0001", "call_id": answered["call_id"],
                        "called_at": "2026-11-23T09:30:00+08:00", "category": "inquiry"}  # fmt: skip
                await ws.send_str(json.dumps({"v": 1, "type": "form.submit", "form": form}))
                await receive_until(ws, "form.saved")
                saved = await day(ws, lambda d: True)  # stored before form.saved: no wait
                assert [o["recorded"] for o in saved["offers"]] == [False, True]
                assert (saved["without_record"], saved["handled"], saved["missed"]) == (0, 1, 1)
    finally:
        for driver in drivers:
            await driver.stop()
        await service.stop()
