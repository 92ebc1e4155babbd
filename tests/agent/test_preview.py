"""Call-backs offered to free agents (preview, docs/callbacks.md): the desk with a
fake worklist and a fake floor, over the agent's websocket."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcenter.acd.engine import AcdSnapshot, AgentView, QueueView
from callcenter.acd.events import AgentStateChanged, CallOffered
from callcenter.agent.auth import Sessions
from callcenter.agent.desktop import AgentInfo, DesktopHub
from callcenter.agent.preview import SKIPS_KEPT
from callcenter.bus import EventBus
from callcenter.casework.callbacks import Item, Kind, Status
from callcenter.records.callbacks import StoredItem
from tests.helpers import HandControl, desktop_socket

AGENTS = {"a1": AgentInfo("a1", "Zhang Wei", "001"), "a2": AgentInfo("a2", "Li Na", "002")}
OWED = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def item(item_id: int, number: str = "13800000001", attempts: int = 0) -> StoredItem:
    work = Item(Kind.ABANDONED, Status.OPEN, OWED, attempts, 3, None, None)
    return StoredItem(
        item_id, number, OWED.date(), "hotline", f"c{item_id}", None, None, 1, OWED, None,
        OWED, OWED, work,
    )  # fmt: skip


class World:
    def __init__(self, preview: frozenset[str]) -> None:
        self.bus: EventBus[Any] = EventBus()
        self.items = [item(1), item(2, "13800000002", attempts=1)]
        self.db_down = False
        self.asked: list[tuple[str, frozenset[int]]] = []  # (agent, skipped) per read
        self.floor_reads = 0
        self.waiting = {"hotline": 0, "sales": 0}
        self.states = {"a1": "ready", "a2": "ready"}
        sessions = Sessions()
        sessions.add_user("a1", "pw-a1", "agent")
        sessions.add_user("a2", "pw-a2", "agent")
        self.hub = DesktopHub(
            self.bus, sessions, AGENTS, control=HandControl(snapshot=self.snapshot),
            greeting="您好", next_callback=self.next_item,
            queue_groups={"hotline": "service", "sales": "sales"}, preview=preview,
        )  # fmt: skip

    def snapshot(self) -> AcdSnapshot:
        self.floor_reads += 1
        groups = {"a1": ("service",), "a2": ("sales",)}
        return AcdSnapshot(
            tuple(QueueView(name, n, 0.0) for name, n in self.waiting.items()),
            tuple(
                AgentView(a, a, "", state, None, 0.0, None, 0, groups[a])
                for a, state in self.states.items()
            ),
            (),
        )

    async def next_item(self, agent_id: str, skipped: frozenset[int]) -> StoredItem | None:
        self.asked.append((agent_id, skipped))
        if self.db_down:
            raise OSError("connection refused")
        return next((i for i in self.items if i.id not in skipped), None)

    def ready(self, agent_id: str) -> None:
        self.bus.publish(AgentStateChanged(agent_id, "ready", "not-ready", None), 1.0)


@pytest.fixture
def preview() -> frozenset[str]:
    return frozenset({"hotline"})


@pytest.fixture
async def world(preview: frozenset[str]) -> Any:
    w = World(preview)
    app = web.Application()
    app.add_routes(w.hub.routes())
    client = TestClient(TestServer(app))
    await client.start_server()
    w.hub.start()
    w.client = client
    try:
        yield w
    finally:
        await w.hub.stop()
        await client.close()


async def opened(w: World, user: str) -> Any:
    resp = await w.client.post("/api/login", json={"user_id": user, "password": f"pw-{user}"})
    ws = await desktop_socket(w.client.ws_connect, "/ws/agent", (await resp.json())["token"])
    assert (await receive(ws))["type"] == "hello"
    return ws


async def receive(ws: Any) -> dict[str, Any]:
    """The next message but the agent's state changes (`agent.state`)."""
    while True:
        message = json.loads((await asyncio.wait_for(ws.receive(), 3)).data)
        if message["type"] != "agent.state":
            return message


async def ask(ws: Any, message: dict[str, Any]) -> dict[str, Any]:
    """Send `message` with a ref; its reply (any message before it is returned first)."""
    await ws.send_str(json.dumps({"v": 1, "ref": "q", **message}))
    return await receive(ws)


async def nothing_sent_after_the_floor_was_read(w: World, ws: Any, reads: int) -> None:
    """The desk read the floor for the ready agent (more than `reads` times) and sent
    nothing: the next message is the reply to a ping."""
    async with asyncio.timeout(3):
        while w.floor_reads <= reads:
            await asyncio.sleep(0.01)
    assert await ask(ws, {"type": "ping"}) == {"type": "pong", "v": 1, "ref": "q"}


async def test_a_ready_agent_with_nobody_waiting_is_offered_the_next_call_back(
    world: World,
) -> None:
    ws = await opened(world, "a1")
    world.ready("a1")
    offer = await receive(ws)
    assert offer == {
        "type": "callback.preview", "v": 1, "ref": None, "reason": None,
        "item": {"id": 1, "kind": "abandoned", "number": "13800000001", "queue": "hotline",
                 "owed_since": OWED.timestamp(), "attempts": 0, "max_attempts": 3},
    }  # fmt: skip
    assert world.asked == [("a1", frozenset())]
    await ws.close()


async def test_no_offer_while_a_caller_waits_in_the_agents_queues(world: World) -> None:
    ws = await opened(world, "a1")
    world.waiting["sales"] = 4  # not a1's queue: no matter
    world.ready("a1")
    assert (await receive(ws))["item"]["id"] == 1
    world.waiting["hotline"] = 1
    reads = world.floor_reads
    world.ready("a1")
    await nothing_sent_after_the_floor_was_read(world, ws, reads)
    answer = await ask(ws, {"type": "agent.preview"})
    assert (answer["type"], answer["item"], answer["reason"]) == (
        "callback.preview", None, "callers are waiting",
    )  # fmt: skip
    assert len(world.asked) == 1  # the worklist was not read while the caller waits
    await ws.close()


async def test_an_agent_offered_a_call_meanwhile_is_not_offered_a_call_back(world: World) -> None:
    ws = await opened(world, "a1")
    world.states["a1"] = "reserved"  # a caller's offer came before the desk read the floor
    reads = world.floor_reads
    world.ready("a1")
    await nothing_sent_after_the_floor_was_read(world, ws, reads)
    await ws.close()


@pytest.mark.parametrize("preview", [frozenset(), frozenset({"sales"})])
async def test_no_offer_where_preview_is_off_for_the_agents_queues(world: World) -> None:
    ws = await opened(world, "a1")
    world.ready("a1")
    # Preview on elsewhere (sales) or nowhere: a1 (service) is offered none.
    answer = await ask(ws, {"type": "agent.preview"})
    assert answer["type"] == "callback.preview", answer
    assert (answer["item"], answer["reason"], answer["ref"]) == (
        None, "call-backs are not offered in your queues", "q",
    )  # fmt: skip
    assert world.asked == []
    await ws.close()


async def test_a_skip_gives_the_next_and_is_remembered_for_the_session(world: World) -> None:
    ws = await opened(world, "a1")
    first = await ask(ws, {"type": "agent.preview"})
    assert (first["item"]["id"], first["ref"]) == (1, "q")
    second = await ask(ws, {"type": "agent.preview_skip", "item_id": 1})
    assert (second["item"]["id"], second["item"]["attempts"]) == (2, 1)
    assert (await ask(ws, {"type": "agent.preview_skip", "item_id": 2}))["item"] is None
    world.ready("a1")  # still skipped
    assert (await receive(ws))["item"] is None
    assert world.asked[-1] == ("a1", frozenset({1, 2}))
    # Another agent's skips are theirs.
    ws2 = await opened(world, "a2")
    world.states["a2"], world.waiting = "ready", {"hotline": 0, "sales": 0}
    world.hub.queue_configured("sales", None, False, preview=True, group="sales")
    assert (await ask(ws2, {"type": "agent.preview"}))["item"]["id"] == 1
    # A new session of a1's starts with none skipped.
    await ws.close()
    ws = await opened(world, "a1")
    assert (await ask(ws, {"type": "agent.preview"}))["item"]["id"] == 1
    await ws.close()
    await ws2.close()


async def test_skips_kept_are_bounded(world: World) -> None:
    ws = await opened(world, "a1")
    for n in range(SKIPS_KEPT + 5):
        await ask(ws, {"type": "agent.preview_skip", "item_id": 1000 + n})
    skipped = world.asked[-1][1]
    assert len(skipped) == SKIPS_KEPT and 1000 + SKIPS_KEPT + 4 in skipped and 1000 not in skipped
    await ws.close()


async def test_the_records_down_are_an_error_reply_and_the_desk_goes_on(world: World) -> None:
    ws = await opened(world, "a1")
    world.db_down = True
    world.ready("a1")
    error = await receive(ws)
    assert (error["type"], error["code"]) == ("error", "unavailable")
    assert "call-backs unavailable" in error["message"]
    asked = await ask(ws, {"type": "agent.preview"})
    assert (asked["type"], asked["code"], asked["ref"]) == ("error", "unavailable", "q")
    world.db_down = False
    assert (await ask(ws, {"type": "agent.preview"}))["item"]["id"] == 1
    # The pops go on.
    world.bus.publish(CallOffered("c9", "hotline", "a1", "leg9", "139", "Han", 1), 2.0)
    assert (await receive(ws))["type"] == "call.offered"
    await ws.close()


async def test_a_bad_skip_is_refused_by_name(world: World) -> None:
    ws = await opened(world, "a1")
    error = await ask(ws, {"type": "agent.preview_skip", "item_id": 0})
    assert (error["type"], error["code"]) == ("error", "invalid")
    assert error["message"].startswith("item_id")
    await ws.close()


async def test_without_the_records_only_a_queue_with_preview_on_is_an_error() -> None:
    from callcenter.agent.preview import OFF, Previews
    from callcenter.agent.replies import CallbackPreview, ErrorReply
    from callcenter.clock import LoopClock

    async def floor() -> None:
        return None

    nowhere = Previews(None, floor, LoopClock(), queue_groups={"hotline": "service"})
    answer = await nowhere.offer("a1", "q", asked=True)
    assert isinstance(answer, CallbackPreview) and (answer.item, answer.reason) == (None, OFF)
    assert await nowhere.offer("a1", None, asked=False) is None
    on = Previews(None, floor, LoopClock(), preview=frozenset({"hotline"}))
    error = await on.offer("a1", "q", asked=True)
    assert isinstance(error, ErrorReply) and error.code == "unavailable", error


async def test_a_caller_waiting_in_the_agents_queue_withdraws_the_offer(world: World) -> None:
    """Inbound calls first: once a caller waits in a queue the agent answers, the
    card shown is withdrawn (its Call would be refused); a caller of another
    queue withdraws nothing."""
    from callcenter.acd.events import CallQueued

    ws = await opened(world, "a1")
    world.ready("a1")
    assert (await receive(ws))["item"]["id"] == 1
    world.bus.publish(CallQueued("c9", "sales", "13900000009", 1), 2.0)  # not a1's queue
    assert await ask(ws, {"type": "ping"}) == {"type": "pong", "v": 1, "ref": "q"}
    world.bus.publish(CallQueued("c10", "hotline", "13900000010", 1), 3.0)
    withdrawn = await receive(ws)
    assert (withdrawn["type"], withdrawn["item"], withdrawn["reason"]) == (
        "callback.preview", None, "callers are waiting",
    )  # fmt: skip
    world.bus.publish(CallQueued("c11", "hotline", "13900000011", 2), 4.0)  # said once
    assert await ask(ws, {"type": "ping"}) == {"type": "pong", "v": 1, "ref": "q"}
    await ws.close()
