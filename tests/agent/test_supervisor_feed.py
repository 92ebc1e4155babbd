"""The supervisors' feed over the real websocket: the board whole once, then its
changes; a supervisor who joins in between; breach alerts coalesced."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcenter.acd.events import TargetBreached
from callcenter.agent.auth import Sessions
from callcenter.agent.desktop import DesktopHub
from callcenter.agent.messages import AgentFigures, BoardFigures, FloorAlerts, QueueFigures
from callcenter.bus import EventBus
from tests.agent.test_board import HandFloor
from tests.agent.test_desktop import AGENTS, receive
from tests.conftest import ManualClock
from tests.helpers import HandControl, desktop_socket

T0 = 1_795_420_800.0


class Desk:
    """A hub with a floor set by hand and a clock moved by the test."""

    def __init__(self) -> None:
        self.clock = ManualClock(monotonic=0.0, wall=T0)
        self.floor = HandFloor(self.clock)
        self.bus: EventBus[Any] = EventBus()
        sessions = Sessions()
        sessions.add_user("sup", "pw-sup", "supervisor")
        self.hub = DesktopHub(
            self.bus, sessions, AGENTS, control=HandControl(snapshot=self.floor.snapshot),
            greeting="", clock=self.clock, figures_every=0.05, waiting_shown=3, alert_window=0.5,
        )  # fmt: skip
        app = web.Application()
        app.add_routes(self.hub.routes())
        self.client = TestClient(TestServer(app))

    async def supervisor(self) -> Any:
        resp = await self.client.post("/api/login", json={"user_id": "sup", "password": "pw-sup"})
        token = (await resp.json())["token"]
        ws = await desktop_socket(self.client.ws_connect, "/ws/supervisor", token)
        assert (await receive(ws))["type"] == "hello"
        return ws


@pytest.fixture
async def desk() -> AsyncIterator[Desk]:
    d = Desk()
    await d.client.start_server()
    d.hub.start()
    try:
        yield d
    finally:
        await d.hub.stop()
        await d.client.close()


class Page:
    """A supervisor's board as the page keeps it: whole, then each change in order."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.seq = -1
        self.agents: dict[str, AgentFigures] = {}
        self.queues: dict[str, QueueFigures] = {}

    async def next(self) -> BoardFigures:
        m = BoardFigures.model_validate(await receive(self.ws, "board.figures"))
        if m.full:
            self.agents, self.queues = {}, {}
        else:
            assert m.seq == self.seq + 1, (m.seq, self.seq)  # none missed, none twice
        for agent_id in m.removed_agents:
            del self.agents[agent_id]
        for name in m.removed_queues:
            del self.queues[name]
        self.agents.update((a.agent_id, a) for a in m.agents)
        self.queues.update((q.name, q) for q in m.queues)
        self.seq = m.seq
        return m

    async def until(self, at: float) -> tuple[BoardFigures, list[BoardFigures]]:
        """The first board.figures of time `at`, and the ones before it."""
        before = []
        while (m := await self.next()).at != at:
            before.append(m)
        return m, before

    def states(self) -> list[tuple[str, str]]:
        return sorted((a.agent_id, a.state) for a in self.agents.values())


async def test_the_board_goes_whole_then_only_what_changed(desk: Desk) -> None:
    for agent_id in ("a1", "a2", "a3"):
        desk.floor.agent(agent_id, "ready")
    for n in range(5):
        desk.floor.wait(f"c{n}")
        desk.clock.advance(1.0)
    one = Page(await desk.supervisor())
    whole = await one.next()
    assert (whole.v, whole.full, whole.at) == (2, True, T0 + 5)
    assert [(a.agent_id, a.state, a.state_since) for a in whole.agents] == [
        ("a1", "ready", T0), ("a2", "ready", T0), ("a3", "ready", T0),
    ]  # fmt: skip
    # The queue lists its three longest-waiting callers and counts all five.
    [queue] = whole.queues
    assert queue.waiting_count == 5
    assert [(c.call_id, c.waiting_since) for c in queue.waiting] == [
        ("c0", T0), ("c1", T0 + 1), ("c2", T0 + 2),
    ]  # fmt: skip

    # Time goes by and nothing happens: changes come, numbered, with no rows.
    desk.clock.advance(10.0)
    quiet, meanwhile = await one.until(T0 + 15)
    for figures in [*meanwhile, quiet]:
        assert not figures.full and (figures.agents, figures.queues) == ([], [])

    # a2 takes a break, a3 leaves the floor, the longest-waiting caller is answered.
    desk.floor.agent("a2", "not-ready", "lunch")
    del desk.floor.agents["a3"]
    del desk.floor.calls["c0"]
    desk.clock.advance(2.0)
    change, _ = await one.until(T0 + 17)
    assert [(a.agent_id, a.state, a.reason, a.state_since) for a in change.agents] == [
        ("a2", "not-ready", "lunch", T0 + 15),
    ]  # fmt: skip
    assert change.removed_agents == ["a3"]
    [queue] = change.queues
    assert queue.waiting_count == 4 and [c.call_id for c in queue.waiting] == ["c1", "c2", "c3"]

    # A second supervisor joins between two changes: the board the first one has at
    # that number, which the next change applies to; never a change against nothing.
    desk.floor.agent("a1", "on-call")
    two = Page(await desk.supervisor())
    joined = await two.next()
    assert joined.full and joined.removed_agents == []
    while one.seq < joined.seq:
        await one.next()
    assert (one.agents, one.queues) == (two.agents, two.queues)
    desk.clock.advance(2.0)
    for_one, _ = await one.until(T0 + 19)
    for_two, _ = await two.until(T0 + 19)
    assert for_one == for_two and not for_two.full  # the same message for both
    assert one.states() == two.states() == [("a1", "on-call"), ("a2", "not-ready")]

    # A page that lost track asks for the whole board again.
    await one.ws.send_str(json.dumps({"v": 1, "type": "supervisor.figures"}))
    while not (await one.next()).full:  # changes already on their way come first
        pass
    assert one.states() == [("a1", "on-call"), ("a2", "not-ready")]
    for page in (one, two):
        await page.ws.close()


async def test_a_burst_of_breaches_is_one_alert_at_once_then_one_frame(desk: Desk) -> None:
    ws = await desk.supervisor()
    await receive(ws, "board.figures")
    loop = asyncio.get_running_loop()

    async def alerts() -> tuple[float, list[str]]:
        # Bounded: the board's figures keep coming, so `receive` alone would wait
        # for a lost alert until the suite's timeout.
        async with asyncio.timeout(5):
            frame = FloorAlerts.model_validate(await receive(ws, "floor.alerts"))
        return loop.time() - started, [str(a.data["call_id"]) for a in frame.alerts]

    started = loop.time()
    for n in range(12):
        desk.bus.publish(TargetBreached(f"x{n}", "hotline", 3, "none"), T0 + n / 100)
    first_at, first = await alerts()
    assert first == ["x0"] and first_at < 0.3  # the first breach shows at once
    desk.clock.advance(0.5)  # the hub's clock: the window is over
    rest_at, rest = await alerts()
    assert rest == [f"x{n}" for n in range(1, 12)]  # together, in order, none lost
    assert rest_at >= 0.45  # at the window's end (0.5 s)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(receive(ws, "floor.alerts"), 0.7)  # and nothing more
    desk.clock.advance(1.0)  # a quiet window: the burst is over
    started = loop.time()
    desk.bus.publish(TargetBreached("y", "hotline", 3, "none"), T0 + 2)
    alone_at, alone = await alerts()
    assert alone == ["y"] and alone_at < 0.3
    await ws.close()


@pytest.mark.parametrize("turns", range(6))
async def test_stopping_while_todays_figures_arrive_stops(turns: int) -> None:
    """A stop that lands as the records answer still stops: Python 3.11's
    wait_for returned the result and swallowed the cancellation, leaving the
    reader asleep for five minutes and the service's stop waiting on it."""
    asked, answer = asyncio.Event(), asyncio.Event()

    async def history(start: Any, end: Any, agents: list[str]) -> tuple[list[Any], list[Any]]:
        asked.set()
        await answer.wait()
        return [], []

    clock = ManualClock(monotonic=0.0, wall=T0)
    hub = DesktopHub(
        EventBus(), Sessions(), AGENTS, control=HandControl(),
        greeting="", clock=clock, history=history,
    )  # fmt: skip
    hub.start()
    async with asyncio.timeout(2):
        await asked.wait()
    answer.set()
    for _ in range(turns):  # the stop lands at each point of the answer's way back
        await asyncio.sleep(0)
    async with asyncio.timeout(2):  # all its tasks ended, none asleep
        await hub.stop()


async def test_a_supervisor_joining_while_the_floor_is_slow_to_answer_gets_hello_first(
    desk: Desk,
) -> None:
    # Over the link to the call process a snapshot takes time; the board's
    # periodic frames and the feed must not reach the joining page before its hello.
    floor = desk.floor

    class SlowFloor(HandControl):
        async def snapshot(self) -> Any:
            await asyncio.sleep(0.2)  # several figures periods
            return floor.snapshot()

    first = await desk.supervisor()
    desk.hub.floor_model.control = SlowFloor()
    resp = await desk.client.post("/api/login", json={"user_id": "sup", "password": "pw-sup"})
    token = (await resp.json())["token"]
    joining = await desktop_socket(desk.client.ws_connect, "/ws/supervisor", token)
    assert json.loads((await joining.receive()).data)["type"] == "hello"
    page = Page(joining)
    assert (await page.next()).full  # then the whole board, then changes in order
    await page.next()
    await joining.close()
    await first.close()
