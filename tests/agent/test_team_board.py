"""A team leader's floor: their team's agents on the board, in the feed, and
under their hand; the queues and the alerts as a supervisor's (issue 18:
roles, "team leader (sees their team)"; agent/team_view.py)."""

from __future__ import annotations

import asyncio
import json
import typing
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from callcenter.acd.agents import Agent
from callcenter.acd.engine import Acd
from callcenter.acd.events import AcdEvent, AgentLogin, CallArrived, SetNotReady, SetReady
from callcenter.acd.queues import QueueConfig
from callcenter.agent.auth import Sessions
from callcenter.agent.desktop import AgentInfo, DesktopHub
from callcenter.agent.messages import BoardFigures, FloorBatch
from callcenter.bus import EventBus
from tests.helpers import HandControl, desktop_socket
from tests.sip.helpers import Ids

TEAMS = {"a1": "north", "a2": "south", "a3": "north"}
EVENTS = typing.get_args(AcdEvent)


async def receive(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        msg = json.loads((await asyncio.wait_for(ws.receive(), 3)).data)
        if msg["type"] == kind:
            return msg


class Floor:
    def __init__(self) -> None:
        agents = [
            Agent(a, f"Agent {a}", a[-1], f"100{a[-1]}", {"cs": 1, team: 1})
            for a, team in TEAMS.items()
        ]
        self.acd = Acd([QueueConfig("hotline", ("4000",), "cs")], agents, new_id=Ids("x"))
        self.bus: EventBus[Any] = EventBus()
        self.commands: list[object] = []
        for a in TEAMS:
            self.do(AgentLogin(a))
            self.do(SetReady(a))
        sessions = Sessions()
        sessions.add_user("sup", "pw-sup", "supervisor")
        sessions.add_user("tl1", "pw-tl1", "team_leader")
        sessions.add_user("tl2", "pw-tl2", "team_leader")  # leads no team

        async def team_of(user_id: str) -> str | None:
            return {"tl1": "north"}.get(user_id)

        self.hub = DesktopHub(
            self.bus, sessions, {a: AgentInfo(a, a, a[-1]) for a in TEAMS}, greeting="",
            control=HandControl(command=self.command, snapshot=lambda: self.acd.snapshot(1.0)),
            figures_every=0.05, feed_every=0.05, team_of=team_of,
        )  # fmt: skip

    def do(self, cmd: Any) -> None:
        for event in self.acd.handle(cmd, 1.0):
            if isinstance(event, EVENTS):  # what the call process publishes
                self.bus.publish(event, 1.0)

    def command(self, cmd: Any) -> None:
        self.commands.append(cmd)
        self.do(cmd)


async def test_a_team_leader_sees_and_sets_only_their_teams_agents() -> None:
    floor = Floor()
    app = web.Application()
    app.add_routes(floor.hub.routes())
    client = TestClient(TestServer(app))
    await client.start_server()
    floor.hub.start()

    async def socket(user: str) -> Any:
        resp = await client.post("/api/login", json={"user_id": user, "password": f"pw-{user}"})
        assert resp.status == 200
        return await desktop_socket(client.ws_connect, "/ws/supervisor", (await resp.json())["token"])

    try:
        leader, sup, lone = await socket("tl1"), await socket("sup"), await socket("tl2")
        hello = await receive(leader, "hello")
        assert (hello["role"], hello["team"]) == ("team_leader", "north")
        assert sorted(a["agent_id"] for a in hello["board"]["agents"]) == ["a1", "a3"]
        assert [q["name"] for q in hello["board"]["queues"]] == ["hotline"]
        whole = await receive(sup, "hello")
        assert (whole["role"], whole["team"]) == ("supervisor", None)
        assert sorted(a["agent_id"] for a in whole["board"]["agents"]) == ["a1", "a2", "a3"]
        assert (await receive(lone, "hello"))["board"]["agents"] == []

        figures = BoardFigures.model_validate(await receive(leader, "board.figures"))
        assert figures.full and sorted(a.agent_id for a in figures.agents) == ["a1", "a3"]
        assert [q.name for q in figures.queues] == ["hotline"]
        everyone = BoardFigures.model_validate(await receive(sup, "board.figures"))
        assert sorted(a.agent_id for a in everyone.agents) == ["a1", "a2", "a3"]
        assert BoardFigures.model_validate(await receive(lone, "board.figures")).agents == []

        # Another team's agent is not theirs to set; their own is.
        for agent_id, ref in (("a2", "s1"), ("a1", "s2")):
            await leader.send_str(json.dumps({
                "v": 1, "type": "supervisor.set_state", "agent_id": agent_id,
                "state": "not-ready", "reason": "coaching", "ref": ref,
            }))  # fmt: skip
        refused = await receive(leader, "error")
        assert (refused["ref"], refused["code"]) == ("s1", "forbidden")
        assert "not in your team" in refused["message"]
        assert (await receive(leader, "ok"))["ref"] == "s2"
        assert floor.commands == [SetNotReady("a1", "supervisor: coaching")]

        # The feed: the state changes of their team's agents only, and the calls of them.
        await leader.send_str(json.dumps({"v": 1, "type": "supervisor.feed", "calls": True}))
        await receive(leader, "ok")
        floor.do(SetNotReady("a2", "break"))
        floor.do(SetNotReady("a3", "lunch"))
        floor.do(SetReady("a1"))
        floor.do(CallArrived("c1", "4000", "13800000001"))  # offered to a1, the only one ready
        agents: set[str] = set()
        calls: set[object] = set()
        for _ in range(20):
            batch = FloorBatch.model_validate(await receive(leader, "floor.batch"))
            agents |= {a.agent_id for a in batch.agents}
            calls |= {(c.event, c.data.get("agent_id")) for c in batch.calls}
            if {"a1", "a3"} <= agents and calls:
                break
        assert agents == {"a1", "a3"}
        assert calls == {("CallOffered", "a1")}
        # The supervisor's feed has the other team's agent.
        for _ in range(20):
            batch = FloorBatch.model_validate(await receive(sup, "floor.batch"))
            if any(a.agent_id == "a2" for a in batch.agents):
                break
        else:
            raise AssertionError("the supervisor's feed has no a2")
        for ws in (leader, sup, lone):
            await ws.close()
    finally:
        await floor.hub.stop()
        await client.close()


class SlowControl(HandControl):
    """A floor whose snapshot takes 50 ms (a busy call process)."""

    async def snapshot(self) -> Any:
        await asyncio.sleep(0.05)
        return await super().snapshot()


async def test_a_view_joining_while_the_period_drops_unused_boards_gets_its_board() -> None:
    """Found in review: a supervisor's connect made its view's board feed, then
    waited for the snapshot; the board's period dropped the feed meanwhile (no
    client of that view connected yet) and connect failed with a KeyError."""
    floor = Floor()
    sessions = Sessions()
    sessions.add_user("sup", "pw-sup", "supervisor")
    sessions.add_user("tl1", "pw-tl1", "team_leader")

    async def team_of(user_id: str) -> str | None:
        return "north"

    hub = DesktopHub(
        floor.bus, sessions, {a: AgentInfo(a, a, a[-1]) for a in TEAMS}, greeting="",
        control=SlowControl(snapshot=lambda: floor.acd.snapshot(1.0)),
        figures_every=0.02, feed_every=0.05, team_of=team_of,
    )  # fmt: skip
    app = web.Application()
    app.add_routes(hub.routes())
    client = TestClient(TestServer(app))
    await client.start_server()
    hub.start()
    try:
        for user in ("sup", "tl1", "sup", "tl1"):
            resp = await client.post("/api/login", json={"user_id": user, "password": f"pw-{user}"})
            token = (await resp.json())["token"]
            ws = await desktop_socket(client.ws_connect, "/ws/supervisor", token)
            assert (await receive(ws, "hello"))["role"] in ("supervisor", "team_leader")
            assert (await receive(ws, "board.figures"))["full"] is True
            await ws.close()
    finally:
        await hub.stop()
        await client.close()
