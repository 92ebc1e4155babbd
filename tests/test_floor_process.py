"""The service as two processes (decision 0004): SIP calls through the call
process pop on the floor process's websockets, the agent's commands reach the
ACD over the link, records land in PostgreSQL, one /metrics page shows both
processes, and a floor process killed mid-shift is replaced without losing a
record."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from typing import Any, cast

import aiohttp
import asyncpg
import pytest

from callcenter.acd.events import CallQueued, RingTicked
from callcenter.app import Service
from callcenter.bus import EventBus
from callcenter.control import CallSide
from callcenter.floor import FloorProcess
from callcenter.link import Link, bus_codec
from callcenter.records.customers import import_customers
from callcenter.records.journal import Journal
from callcenter.settings import Settings
from callcenter.sim.core import PhoneSpec, SimConfig
from callcenter.sim.driver import SimulatorDriver
from callcenter.sip.message import Address
from callcenter.spool import Spool
from tests.helpers import free_port


async def until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def receive(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        message = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
        if message["type"] == kind:
            return dict(message)


def one_call(service: Service, caller: str) -> SimulatorDriver:
    assert service.sip is not None
    host, port = next(iter(service.sip.transports.bound.values()))
    return SimulatorDriver(
        SimConfig(service=Address(host, port), hotline="4000", call_rate=5.0, max_calls=1,
                  ring_cycle=1.0, answer_rings=(1.5, 1.6), talk_seconds=(0.3, 0.3),
                  abandon_share=0.0, caller_numbers=(caller,)),
        [PhoneSpec("1001", "agent-pw")],
        seed=1,
    )  # fmt: skip


async def test_two_processes_pop_command_record_and_survive_a_floor_crash(tmp_path: Any) -> None:
    http_port = free_port()
    settings = Settings(
        service={"data_dir": str(tmp_path / "var"), "floor_process": True},
        http={"port": http_port},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        agents=[{"id": "a001", "name": "Zhang Wei", "number": "007", "extension": "1001",
                 "password": "agent-pw"}],
        queues=[{"name": "hotline", "numbers": ["4000"], "cadence": [0.2, 0.8], "wrap_up": 0.2}],
    )  # fmt: skip
    service = Service(settings)  # the default registry: the process's own metrics too
    await service.start()
    assert service.role == "call" and service.floor is not None and service.dsn
    # start() returned once the floor process served HTTP, and says where.
    assert service.http_addresses == [f"127.0.0.1:{http_port}"]
    http = f"http://127.0.0.1:{http_port}"
    db = await asyncpg.connect(service.dsn)
    await import_customers(db, "name,numbers,vip,notes\nHan Meimei,13812345678,yes,\n")
    drivers: list[SimulatorDriver] = []
    try:
        async with aiohttp.ClientSession() as session:

            async def healthy() -> bool:
                try:
                    async with session.get(f"{http}/healthz") as r:
                        return r.status == 200
                except aiohttp.ClientError:
                    return False

            await until(healthy, 30, "the floor process's HTTP")
            first_floor = service.floor.started
            async with session.post(
                f"{http}/api/login", json={"user_id": "a001", "password": "agent-pw"}
            ) as r:
                token = (await r.json())["token"]
            async with session.ws_connect(f"{http}/ws/agent?token={token}") as ws:
                hello = await receive(ws, "hello")
                assert hello["state"] == "not-ready"  # logged in through the link
                await ws.send_str(json.dumps({"v": 1, "type": "agent.ready", "ref": "r"}))
                assert (await receive(ws, "ok"))["ref"] == "r"
                view = service.call_side.agent_view("a001")
                assert view is not None and view.state == "ready"  # the call process's ACD

                drivers.append(one_call(service, "+8613812345678"))
                await drivers[-1].start()
                pop = await receive(ws, "call.offered")
                assert pop["customer"]["name"] == "Han Meimei"
                assert pop["greeting"] == "您好，客服中心007号为您服务"
                assert (await receive(ws, "call.ended"))["hung_up_by"] == "caller"

            async def recorded(n: int) -> bool:
                count = await db.fetchval("SELECT count(*) FROM calls WHERE ended_at IS NOT NULL")
                return bool(count == n)

            await until(lambda: recorded(1), 10, "the first call's record")

            # One page, both processes: the call's counters (floor), SIP and the
            # ACD's gauges (call process), each process's own CPU under its name.
            async with session.get(f"{http}/metrics") as r:
                assert r.status == 200
                page = await r.text()
            assert 'callcenter_calls_answered_total{queue="hotline"} 1.0' in page
            assert "callcenter_sip_messages_total" in page
            assert 'callcenter_agents{state="wrap-up"}' in page or "callcenter_agents{" in page
            assert "callcenter_floor_process_cpu_seconds_total" in page
            assert page.count("# TYPE process_cpu_seconds_total") == 1

            # The floor process dies mid-shift; a call goes on meanwhile; the
            # new floor process gets what the old one had not acknowledged (all
            # of that call), and every record lands once.
            first_events = await db.fetchval(
                "SELECT count(*) FROM call_events WHERE call_id IS NOT NULL"
            )
            os.kill(service.floor._process.pid, signal.SIGKILL)
            drivers.append(one_call(service, "+8613900000000"))
            await drivers[-1].start()
            await until(
                lambda: asyncio.sleep(0, service.floor.started > first_floor), 30, "a new floor"
            )
            await until(lambda: recorded(2), 20, "the second call's record, resent")
            assert await db.fetchval("SELECT count(*) FROM calls") == 2
            per_call = await db.fetch(
                "SELECT call_id, count(*) AS n FROM call_events"
                " WHERE call_id IS NOT NULL GROUP BY call_id"
            )
            assert [r["n"] for r in per_call] == [first_events, first_events]  # whole, once
            # Keyed by the call process's run and numbers, whichever floor wrote them,
            # so what a new floor process is sent again is never stored twice.
            boots = await db.fetch("SELECT DISTINCT split_part(key, ':', 1) FROM call_events")
            assert [r[0] for r in boots] == [service.boot]
            await until(healthy, 30, "the new floor process's HTTP")
    finally:
        for driver in drivers:
            await driver.stop()
        await db.close()
        await service.stop()
    assert not service.floor.channel or service.floor.channel.closed


async def test_events_no_floor_process_took_are_journaled_as_records(tmp_path: Any) -> None:
    """What a floor process never acknowledged (its window, and the spool beyond
    it) is journaled by the call process at stop, and a spool a crashed run left
    behind at the next start, each under its run's id, for the records writer
    to replay: a floor process that stays down loses no record."""
    settings = Settings(service={"data_dir": str(tmp_path)})
    link = Link(bus_codec())
    left = Spool(tmp_path / "outbox" / "run1.spool")
    left.append(5, link.event(5, 1.0, CallQueued("c0", "hotline", "13800000000", 1)))
    left.append(6, link.event(6, 1.0, RingTicked("c0", 2)))  # not a record
    left.clear = lambda: None  # type: ignore[method-assign]  # the run "died": file kept
    assert left._writer is not None
    left._writer.close()

    bus: EventBus[Any] = EventBus()
    floor = FloorProcess(settings, bus, cast(CallSide, None), boot="run2",
                         metrics=cast(Any, None), outbox_limit=2)  # fmt: skip
    floor._journal_left_behind()
    assert not list((tmp_path / "outbox").glob("*.spool"))
    for n in (1, 2, 3):  # no floor process: two in the window, one spooled
        bus.publish(CallQueued(f"c{n}", "hotline", "13800000000", n), 2.0)
    floor._send_queued()
    assert len(floor.outbox) == 3 and floor.outbox.lost == 0
    await floor.stop()
    records = Journal(tmp_path / "journal").start_replay().records
    assert [(r["key"], r["kind"]) for r in records] == [
        ("run1:5", "CallQueued"), ("run2:1", "CallQueued"),
        ("run2:2", "CallQueued"), ("run2:3", "CallQueued"),
    ]  # fmt: skip
    assert [r["event"]["call_id"] for r in records] == ["c0", "c1", "c2", "c3"]
    assert not list((tmp_path / "outbox").glob("*.spool"))


async def test_a_floor_process_that_cannot_serve_fails_the_start(tmp_path: Any) -> None:
    """The HTTP port is taken: the floor process logs why and exits, and the
    call process's start fails with it instead of running without a desktop."""
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    with taken:
        settings = Settings(
            service={"data_dir": str(tmp_path / "var"), "floor_process": True},
            http={"port": taken.getsockname()[1]},
            sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
            database={"enabled": False},
        )
        service = Service(settings)
        with pytest.raises(RuntimeError, match="ended before serving"):
            await service.start()
        await service.stop()
    assert multiprocessing.active_children() == []
