"""The call-back worklist API on a real database and a fake wall clock: an agent
lists their queues' abandoned callers and works one to its close, a team leader
assigns within their team, a supervisor sees everything, QA is refused; the
history, the month's KPI, the refusals; and the attempt an outbound call's end
records (the adapter the call path connects to)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcenter.acd.errors import AcdError
from callcenter.agent.auth import Sessions
from callcenter.agent.callbacks_api import CallbacksApi
from callcenter.casework.callbacks import Policy
from callcenter.floor_side.callbacks import CallbackWork
from callcenter.records.migrate import apply_migrations
from tests.helpers import HandControl

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
M = timedelta(minutes=1)
SHANGHAI = ZoneInfo("Asia/Shanghai")
POLICY = Policy(max_attempts=2, retry=30 * M)
USERS = {"sup": "supervisor", "a001": "agent", "a002": "agent", "tl": "team_leader", "qa": "qa",
         "tl0": "team_leader", "a003": "agent"}  # fmt: skip


@dataclass
class Api:
    client: TestClient[Any, Any]
    clock: list[datetime]
    tokens: dict[str, str]
    work: CallbackWork
    counted: list[tuple[str, str]]
    control: HandControl
    refuse: list[str]

    async def call(
        self, method: str, path: str, body: Any = None, who: str = "sup", **params: str
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who in self.tokens else {}
        r = await self.client.request(method, path, json=body, headers=headers, params=params)
        return r.status, await r.json()


@pytest.fixture
async def api(database: str) -> AsyncIterator[Api]:
    conn = await asyncpg.connect(database)
    await apply_migrations(conn)
    await conn.execute(
        "INSERT INTO queues (name, config) VALUES ('hotline', '{\"group\": \"service\"}'),"
        " ('sales', '{\"group\": \"sales\"}');"
        "INSERT INTO agents (id, name, number, extension, groups) VALUES"
        " ('a001', 'A', '001', '1001', '{\"service\": 1}'),"
        " ('a002', 'B', '002', '1002', '{\"sales\": 1}'),"
        " ('a003', 'C', '003', '1003', '{\"sales\": 1}');"
        "INSERT INTO staff (id, name, role, team) VALUES ('tl', 'T', 'team_leader', 'sales'),"
        " ('sup', 'S', 'supervisor', NULL), ('qa', 'Q', 'qa', NULL),"
        " ('tl0', 'T0', 'team_leader', NULL)"
    )
    for call_id, caller, queue, outcome in (
        ("h1", "13800000001", "hotline", "abandoned"),
        ("h2", "13800000002", "hotline", "short-abandon"),
        ("s1", "13800000003", "sales", "abandoned"),
    ):
        await conn.execute(
            "INSERT INTO calls (call_id, queue, caller, caller_e164, arrived_at, outcome)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            call_id, queue, caller, "+86" + caller, T0, outcome,
        )  # fmt: skip
    await conn.close()
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    sessions = Sessions()
    for user, role in USERS.items():
        sessions.add_user(user, f"{user}-pw", role)
    tokens = {u: await sessions.login(u, f"{u}-pw", "127.0.0.1") for u in USERS}
    clock = [T0 + M]

    async def get_pool() -> Any:
        return pool

    work = CallbackWork(get_pool, now=lambda: clock[0], monotonic=lambda: 0.0, zone=SHANGHAI,
                        policy=POLICY, lead=timedelta(hours=24))  # fmt: skip
    counted: list[tuple[str, str]] = []

    def count(kind: str, outcome: str) -> None:
        counted.append((kind, outcome))
        work.count(kind, outcome)

    refuse: list[str] = []  # the ACD's refusal of the next command, if any
    commands: list[Any] = []

    def command(cmd: Any) -> None:
        if refuse:
            raise AcdError(refuse.pop())
        commands.append(cmd)

    control = HandControl(command=command)
    control.commands = commands  # type: ignore[attr-defined]
    app = web.Application()
    app.add_routes(CallbacksApi(sessions, pool=get_pool, now=lambda: clock[0], policy=POLICY,
                                zone=SHANGHAI, counted=count, control=control).routes())  # fmt: skip
    try:
        async with TestClient(TestServer(app)) as client:
            await work.refresh()
            yield Api(client, clock, tokens, work, counted, control, refuse)
    finally:
        await pool.close()


def connected_pool(api: Api) -> Any:
    """A connection of the API's pool (`async with`)."""

    class _Conn:
        async def __aenter__(self) -> Any:
            self.pool = await api.work._pool()
            self.conn = await self.pool.acquire()
            return self.conn

        async def __aexit__(self, *exc: object) -> None:
            await self.pool.release(self.conn)

    return _Conn()


def calls_of(items: list[dict[str, Any]]) -> list[str]:
    return [i["call_id"] for i in items]


async def test_an_agent_works_their_queues_abandoned_caller_to_its_close(api: Api) -> None:
    status, mine = await api.call("GET", "/api/callbacks", who="a001")
    assert status == 200 and calls_of(mine) == ["h1"]  # not the short abandon, not sales
    item = mine[0]
    assert (item["kind"], item["number"], item["due"], item["assigned_to"]) == (
        "abandoned", "+8613800000001", True, None,
    )  # fmt: skip
    one = f"/api/callbacks/{item['id']}"
    assert (await api.call("GET", one, who="a002"))[0] == 404  # not in their queues
    status, tried = await api.call("POST", f"{one}/attempts", {"outcome": "no-answer"},
                                   who="a001")  # fmt: skip
    assert status == 200, tried
    assert (tried["status"], tried["attempts"], tried["assigned_to"], tried["due"]) == (
        "open", 1, "a001", False,
    )  # fmt: skip
    assert (await api.call("GET", "/api/callbacks", who="a001", due="now"))[1] == []
    api.clock[0] = T0 + 31 * M
    status, done = await api.call(
        "POST", f"{one}/attempts", {"outcome": "reached", "notes": "called back", "call_id": "o1"},
        who="a001",
    )  # fmt: skip
    assert (status, done["status"], done["closed_as"]) == (200, "closed", "reached")
    assert [(a["actor"], a["outcome"], a["call_id"]) for a in done["attempt_log"]] == [
        ("a001", "no-answer", None), ("a001", "reached", "o1"),
    ]  # fmt: skip
    assert [(h["action"], h["to_status"]) for h in done["history"]] == [
        ("attempt", "open"), ("attempt", "closed"),
    ]  # fmt: skip
    status, refused = await api.call("POST", f"{one}/attempts", {"outcome": "busy"}, who="a001")
    assert status == 409 and "closed" in refused["error"]
    assert api.counted == [("abandoned", "no-answer"), ("abandoned", "reached")]
    assert (await api.call("GET", "/api/callbacks", who="a001"))[1] == []
    status, closed = await api.call("GET", "/api/callbacks", who="a001", status="closed")
    assert calls_of(closed) == ["h1"]


async def test_a_team_leader_assigns_within_their_team_and_a_supervisor_anywhere(
    api: Api,
) -> None:
    assert calls_of((await api.call("GET", "/api/callbacks", who="tl"))[1]) == ["s1"]
    status, everything = await api.call("GET", "/api/callbacks")
    assert status == 200 and sorted(calls_of(everything)) == ["h1", "s1"]
    ids = {i["call_id"]: i["id"] for i in everything}
    sales = f"/api/callbacks/{ids['s1']}"
    status, refused = await api.call("POST", f"{sales}/assign", {"agent_id": "a001"}, who="tl")
    assert status == 404 and "team 'sales'" in refused["error"]
    status, given = await api.call("POST", f"{sales}/assign", {"agent_id": "a003"}, who="tl")
    assert (status, given["assigned_to"]) == (200, "a003")
    assert given["history"][0]["details"] == {"previous": None, "assigned_to": "a003"}
    assert (await api.call("GET", "/api/callbacks", who="a002"))[1] == []  # a003's now
    assert calls_of((await api.call("GET", "/api/callbacks", who="tl"))[1]) == ["s1"]
    hotline = f"/api/callbacks/{ids['h1']}/assign"
    assert (await api.call("POST", hotline, {"agent_id": "a002"}, who="tl"))[0] == 404
    assert (await api.call("POST", hotline, {"agent_id": "a002"}))[0] == 200
    assert (await api.call("POST", hotline, {"agent_id": "nobody"}))[0] == 404
    status, back = await api.call("POST", hotline, {"agent_id": None})
    assert (status, back["assigned_to"]) == (200, None)
    assert (await api.call("POST", hotline, {"agent_id": "a002"}, who="a001"))[0] == 403


async def test_roles_and_bad_requests_are_refused(api: Api) -> None:
    status, refused = await api.call("GET", "/api/callbacks", who="qa")
    assert status == 403 and "call back" in refused["error"]
    assert (await api.call("GET", "/api/callbacks", who="nobody"))[0] == 401
    assert (await api.call("GET", "/api/callbacks", stauts="open"))[0] == 400
    assert (await api.call("GET", "/api/callbacks", due="today"))[0] == 400
    assert (await api.call("GET", "/api/callbacks", kind="abandon"))[0] == 400
    status, error = await api.call("POST", "/api/callbacks/1/attempts", {"outcome": "ok"})
    assert status == 400 and "outcome" in error["error"]
    assert (await api.call("POST", "/api/callbacks/999/attempts", {"outcome": "busy"}))[0] == 404
    assert (await api.call("GET", "/api/callbacks/x1"))[0] == 404
    assert (await api.call("GET", "/api/stats/callbacks", who="a001", month="2026-03"))[0] == 403


async def test_the_months_kpi(api: Api) -> None:
    items = (await api.call("GET", "/api/callbacks"))[1]
    await api.call("POST", f"/api/callbacks/{items[0]['id']}/attempts", {"outcome": "reached"})
    status, kpi = await api.call("GET", "/api/stats/callbacks", month="2026-03")
    assert status == 200, kpi
    assert (kpi["time_zone"], kpi["abandoned"], kpi["reached_same_day"], kpi["same_day_rate"]) == (
        "Asia/Shanghai", 2, 1, 0.5,
    )  # fmt: skip
    assert kpi["attempts"]["reached"] == 1
    assert (await api.call("GET", "/api/stats/callbacks", month="2026-3"))[0] == 400


async def test_an_outbound_calls_end_records_the_attempt_on_its_item(api: Api) -> None:
    @dataclass
    class OutboundEnded:  # the contract's fields (docs/callbacks.md), not the call path's class
        call_id: str
        agent_id: str
        number: str
        item_id: int | None
        outcome: str
        hung_up_by: str
        talk_seconds: float

    [item] = (await api.call("GET", "/api/callbacks", who="a001"))[1]
    ended = OutboundEnded("out-7", "a001", item["number"], item["id"], "agent-no-answer",
                          "service", 0.0)  # fmt: skip
    done = await api.work.outbound_ended(ended)
    assert done is not None and (done.work.attempts, done.work.status.value, done.assigned_to) == (
        1, "open", "a001",
    )  # fmt: skip
    api.clock[0] = T0 + 40 * M
    ended.outcome, ended.call_id = "busy", "out-8"
    done = await api.work.outbound_ended(ended)  # the second of two allowed: closed
    assert done is not None and (done.work.status.value, done.work.closed_as) == ("closed", "busy")
    assert await api.work.outbound_ended(ended) is None  # closed: logged, not recorded
    ended.item_id = None
    assert await api.work.outbound_ended(ended) is None
    _, detail = await api.call("GET", f"/api/callbacks/{item['id']}")
    assert [(a["outcome"], a["call_id"]) for a in detail["attempt_log"]] == [
        ("failed", "out-7"), ("busy", "out-8"),
    ]  # fmt: skip
    assert api.work.attempts[("abandoned", "failed")] == 1
    assert api.work.attempts[("abandoned", "busy")] == 1


async def test_the_figures_are_the_last_refreshs_and_a_failed_refresh_is_counted(
    api: Api,
) -> None:
    def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for m in api.work.collect() for s in m.samples}  # fmt: skip

    got = samples()
    assert got[("callcenter_callbacks_pending", (("kind", "abandoned"),))] == 2  # h1, s1
    assert got[("callcenter_callbacks_pending", (("kind", "reply"),))] == 0
    assert got[("callcenter_callbacks_oldest_seconds", (("kind", "abandoned"),))] == 60.0
    assert got[("callcenter_callbacks_refresh_failures_total", ())] == 0
    key = ("callcenter_callback_attempts_total", (("kind", "abandoned"), ("outcome", "busy")))
    assert got[key] == 0
    [item] = (await api.call("GET", "/api/callbacks", who="a001"))[1]
    await api.call("POST", f"/api/callbacks/{item['id']}/attempts", {"outcome": "busy"})
    assert samples()[key] == 1

    async def down() -> Any:
        raise OSError("connection refused")

    broken = CallbackWork(down, now=lambda: T0, monotonic=lambda: 0.0, zone=SHANGHAI,
                          policy=POLICY, lead=timedelta(hours=24))  # fmt: skip
    await broken.refresh()
    names = {m.name for m in broken.collect()}
    assert broken.failures == 1 and "callcenter_callbacks_pending" not in names


async def test_the_call_paths_outbound_end_on_the_bus_records_the_attempt(api: Api) -> None:
    """The floor process taps the bus: an OutboundEnded naming an item (the
    call path's own event) is recorded on it without anyone asking."""
    from callcenter.acd.events import OutboundEnded
    from callcenter.bus import EventBus

    bus: EventBus[Any] = EventBus()
    work = CallbackWork(api.work._pool, now=lambda: api.clock[0], monotonic=lambda: 0.0,
                        zone=SHANGHAI, policy=POLICY, lead=timedelta(hours=24), bus=bus,
                        interval=3600.0)  # fmt: skip
    work.start()
    try:
        [item] = (await api.call("GET", "/api/callbacks", who="a001"))[1]
        bus.publish(OutboundEnded("out-9", "a001", item["number"], None, "reached", "agent"), 0.0)
        bus.publish(
            OutboundEnded("out-10", "a001", item["number"], item["id"], "reached", "customer", 42.0),
            0.0,
        )
        for _ in range(100):
            _, detail = await api.call("GET", f"/api/callbacks/{item['id']}")
            if detail["attempt_log"]:
                break
            await asyncio.sleep(0.02)
        assert [(a["outcome"], a["call_id"]) for a in detail["attempt_log"]] == [
            ("reached", "out-10")
        ]
        assert detail["status"] == "closed"
    finally:
        await work.stop()


async def test_an_agent_calls_an_item_from_their_own_phone(api: Api) -> None:
    """The Call button of the worklist: the ACD is asked to place the call
    (DialOut, the item named), for the agent asking and only for an agent."""
    from callcenter.acd.events import DialOut

    [item] = (await api.call("GET", "/api/callbacks", who="a001"))[1]
    path = f"/api/callbacks/{item['id']}/call"
    status, placed = await api.call("POST", path, who="a001")
    assert status == 202, placed
    assert placed == {"item_id": item["id"], "agent_id": "a001", "number": item["number"]}
    assert api.control.commands == [DialOut("a001", item["number"], item["id"])]  # type: ignore[attr-defined]
    status, refused = await api.call("POST", path, who="sup")
    assert status == 403 and "agents only" in refused["error"]
    api.refuse.append("callers are waiting")
    status, refused = await api.call("POST", path, who="a001")
    assert (status, refused["error"]) == (409, "callers are waiting")
    assert (await api.call("POST", f"/api/callbacks/{item['id'] + 999}/call", who="a001"))[0] == 404
    # Closed: no more calls.
    await api.call("POST", f"/api/callbacks/{item['id']}/attempts", {"outcome": "reached"})
    status, refused = await api.call("POST", path, who="a001")
    assert status == 409 and "not open" in refused["error"]


async def test_an_outbound_end_is_recorded_only_for_the_agents_item_its_number_and_a_dial(
    api: Api,
) -> None:
    """Found in review: `agent.dial` names any item beside any number, and every end
    was recorded on the item; an agent's phone not answering used up the customer's
    attempts though the customer was never called."""
    from callcenter.acd.events import OutboundEnded

    [item] = (await api.call("GET", "/api/callbacks", who="a001"))[1]
    number = item["number"]
    never_dialled = OutboundEnded("o1", "a001", number, item["id"], "agent-no-answer", None,
                                  dialled=False)  # fmt: skip
    assert await api.work.outbound_ended(never_dialled) is None
    other_agent = OutboundEnded("o2", "a002", number, item["id"], "reached", "agent", 9.0)
    assert await api.work.outbound_ended(other_agent) is None  # a002's queues are sales
    own_mobile = OutboundEnded("o3", "a001", "13912345678", item["id"], "reached", "agent", 9.0)
    assert await api.work.outbound_ended(own_mobile) is None
    _, detail = await api.call("GET", f"/api/callbacks/{item['id']}")
    assert (detail["attempts"], detail["status"], detail["attempt_log"]) == (0, "open", [])
    real = OutboundEnded("o4", "a001", number, item["id"], "reached", "customer", 30.0)
    done = await api.work.outbound_ended(real)
    assert done is not None and done.work.status.value == "closed"



async def test_a_team_leader_without_a_team_assigns_to_no_agent(api: Api) -> None:
    """Found in review: with no team, the check of the agent's team let every
    enabled agent through."""
    item = (await api.call("GET", "/api/callbacks"))[1][0]
    async with connected_pool(api) as conn:
        await conn.execute("UPDATE callback_items SET assigned_to = 'tl0' WHERE id = $1", item["id"])
    path = f"/api/callbacks/{item['id']}/assign"
    status, refused = await api.call("POST", path, {"agent_id": "a001"}, who="tl0")
    assert status == 404 and "of your team" in refused["error"]
    status, back = await api.call("POST", path, {"agent_id": None}, who="tl0")
    assert (status, back["assigned_to"]) == (200, None)



async def test_an_item_called_by_one_agent_is_held_from_the_others(api: Api) -> None:
    """Found in review: two agents offered the same item at once (preview) could
    both call the customer. A Call (and an offer) holds the item for two minutes or
    until an attempt is recorded; meanwhile others are not offered it and their
    Call is refused."""
    from callcenter.records import callbacks as store

    [s1] = (await api.call("GET", "/api/callbacks", who="a002"))[1]
    assert (await api.call("GET", "/api/callbacks", who="a003"))[1][0]["id"] == s1["id"]
    path = f"/api/callbacks/{s1['id']}/call"
    assert (await api.call("POST", path, who="a002"))[0] == 202
    status, refused = await api.call("POST", path, who="a003")
    assert (status, refused["error"]) == (409, f"call-back item {s1['id']} is being called by a002")
    async with connected_pool(api) as conn:
        now = api.clock[0]
        free = await store.search(conn, now, due_now=True, free_for="a003",
                                  scope=store.CallbackScope("a003", None))  # fmt: skip
        assert free == []  # not offered to a003 either
        assert await store.hold(conn, s1["id"], "a003", now + store.HOLD, now + 2 * store.HOLD) is None
        assert await store.hold(conn, s1["id"], "a002", now, now + store.HOLD) == "a003"
    # An attempt recorded lets go.
    await api.call("POST", f"/api/callbacks/{s1['id']}/attempts", {"outcome": "no-answer"}, who="a003")
    async with connected_pool(api) as conn:
        assert await store.hold(conn, s1["id"], "a002", api.clock[0], api.clock[0] + store.HOLD) is None
