"""The administration API on a running service with a real database (and,
for who may read its OpenAPI document, on its own)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from callcenter.agent.admin import AdminApi
from callcenter.agent.auth import Sessions
from callcenter.agent.desktop import SESSION_ENDED
from callcenter.call_side.service import Service
from callcenter.settings import QueueSettings, Settings
from tests.helpers import FLOOR_PROCESS, HandControl, desktop_socket, free_port


async def test_supervisors_manage_agents_and_queues_live_with_an_audit_log(tmp_path: Path) -> None:
    settings = Settings(
        service={"data_dir": str(tmp_path / "var"), "floor_process": FLOOR_PROCESS},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        agents=[
            {
                "id": "a001",
                "name": "Zhang Wei",
                "number": "001",
                "extension": "1001",
                "password": "first-pw",
            }
        ],
        desktop={"supervisors": [{"id": "sup", "name": "Sup", "password": "sup-pw"}]},
    )
    service = Service(settings, registry=CollectorRegistry())
    await service.start()
    base = f"http://{service.http_addresses[0]}"
    try:
        async with aiohttp.ClientSession() as s:

            async def login(user: str, password: str) -> tuple[int, Any]:
                async with s.post(
                    f"{base}/api/login", json={"user_id": user, "password": password}
                ) as r:
                    return r.status, await r.json()

            _, sup = await login("sup", "sup-pw")
            _, agent = await login("a001", "first-pw")
            auth = {"Authorization": f"Bearer {sup['token']}"}

            async with s.get(f"{base}/api/admin/agents") as r:
                assert r.status == 401
            async with s.get(
                f"{base}/api/admin/agents", headers={"Authorization": f"Bearer {agent['token']}"}
            ) as r:
                assert r.status == 403
            new = {
                "id": "a002",
                "name": "Li Na",
                "number": "002",
                "extension": "1002",
                "password": "second-pw",
            }
            async with s.post(f"{base}/api/admin/agents", json=new, headers=auth) as r:
                assert r.status == 201
            async with s.post(f"{base}/api/admin/agents", json=new, headers=auth) as r:
                assert r.status == 409
            async with s.post(
                f"{base}/api/admin/agents", json={**new, "id": "bad id"}, headers=auth
            ) as r:
                assert r.status == 400 and "id" in (await r.json())["error"]
            # In effect at once: the ACD knows a002 and a002 can log in.
            assert service.sip is not None and "a002" in service.sip.core.acd.agents
            assert (await login("a002", "second-pw"))[0] == 200
            async with s.patch(
                f"{base}/api/admin/agents/a002",
                json={"groups": {"service": 1, "tech": 3}},
                headers=auth,
            ) as r:
                assert r.status == 200
            assert service.sip.core.acd.agents["a002"].groups == {"service": 1, "tech": 3}
            async with s.post(
                f"{base}/api/admin/agents/a001/password",
                json={"password": "new-secret"},
                headers=auth,
            ) as r:
                assert r.status == 200
            assert (await login("a001", "first-pw"))[0] == 401
            assert (await login("a001", "new-secret"))[0] == 200
            async with s.patch(
                f"{base}/api/admin/agents/a002", json={"enabled": False}, headers=auth
            ) as r:
                assert r.status == 200
            assert "a002" not in service.sip.core.acd.agents
            queue = {"name": "tech", "numbers": ["5000"], "group": "tech", "strategy": "skill"}
            async with s.put(f"{base}/api/admin/queues/tech", json=queue, headers=auth) as r:
                assert r.status == 200
            assert service.sip.core.acd.queues["tech"].numbers == ("5000",)
            # A queue's greeting, its wrap-up until the record and its call-backs
            # offered to free agents reach the desktop too.
            waiting = {**queue, "greeting": "欢迎致电，我是{name}", "wrap_up_until_record": True,
                       "preview_callbacks": True}  # fmt: skip
            async with s.put(f"{base}/api/admin/queues/tech", json=waiting, headers=auth) as r:
                assert r.status == 200
            assert service.sip.core.acd.queues["tech"].wrap_up_seconds == 300.0
            if service.floor_side is not None and service.floor_side.desktop is not None:
                desk = service.floor_side.desktop.agent_desk
                assert desk.greeting("tech", "a001") == "欢迎致电，我是Zhang Wei"
                assert desk.waits_for_record("tech") and desk.offers_callbacks("tech")
            async with s.put(f"{base}/api/admin/queues/tech", json=queue, headers=auth) as r:
                assert r.status == 200
            if service.floor_side is not None and service.floor_side.desktop is not None:
                assert not desk.waits_for_record("tech") and not desk.offers_callbacks("tech")
            async with s.put(
                f"{base}/api/admin/queues/tech", json={**queue, "strategy": "random"}, headers=auth
            ) as r:
                assert r.status == 400 and "strategy" in (await r.json())["error"]
            # Overflows that go round in a circle, or to no queue: refused, and
            # neither the ACD nor the table (the next start) takes them.
            for name, target, words in (
                ("loop", "loop", "loop -> loop"),
                ("spare", "nowhere", "unknown queue 'nowhere'"),
            ):
                body = {"name": name, "overflow": {"kind": "queue", "target": target}}
                async with s.put(f"{base}/api/admin/queues/{name}", json=body, headers=auth) as r:
                    assert r.status == 409, (name, r.status)
                    assert words in (await r.json())["error"]
            hotline_to_tech = {"name": "hotline", "overflow": {"kind": "queue", "target": "tech"}}
            async with s.put(
                f"{base}/api/admin/queues/hotline", json=hotline_to_tech, headers=auth
            ) as r:
                assert r.status == 200
            tech_to_hotline = {**queue, "overflow": {"kind": "queue", "target": "hotline"}}
            async with s.put(
                f"{base}/api/admin/queues/tech", json=tech_to_hotline, headers=auth
            ) as r:
                assert r.status == 409
                assert "tech -> hotline -> tech" in (await r.json())["error"]
            assert service.sip.core.acd.queues["tech"].overflow.kind == "reject"
            async with s.get(f"{base}/api/admin/queues", headers=auth) as r:
                stored = {q["name"]: q for q in await r.json()}
            assert sorted(stored) == ["hotline", "tech"]
            assert stored["tech"]["overflow"]["kind"] == "reject"
            async with s.get(f"{base}/api/admin/audit", headers=auth) as r:
                log = await r.json()
            assert [(e["actor"], e["action"], e["target"]) for e in reversed(log)] == [
                ("sup", "agent.add", "a002"),
                ("sup", "agent.edit", "a002"),
                ("sup", "agent.password", "a001"),
                ("sup", "agent.edit", "a002"),
                ("sup", "queue.put", "tech"),
                ("sup", "queue.put", "tech"),
                ("sup", "queue.put", "tech"),
                ("sup", "queue.put", "hotline"),
            ]
            assert all("password" not in str(e["details"]) for e in log)
            # The OpenAPI document: supervisors only, by default (http.openapi).
            async with s.get(f"{base}/api/openapi.json") as r:
                assert r.status == 401
                assert r.headers["WWW-Authenticate"] == 'Bearer realm="callcenter"'
            _, agent = await login("a001", "new-secret")  # the reset ended the first token
            agent_auth = {"Authorization": f"Bearer {agent['token']}"}
            async with s.get(f"{base}/api/openapi.json", headers=agent_auth) as r:
                assert r.status == 403
            async with s.get(f"{base}/api/openapi.json", headers=auth) as r:
                doc = await r.json()
            assert doc["openapi"] == "3.1.0" and "/api/admin/agents" in doc["paths"]
            assert "AgentIn" in doc["components"]["schemas"]
    finally:
        await service.stop()


async def test_a_password_reset_or_disabling_ends_the_agents_sessions(tmp_path: Path) -> None:
    """Issue 16, item 13: after a password reset through the administration API
    the agent's open websocket still answered commands, and a token issued before
    the reset (or before the agent was disabled) still opened a new one."""
    settings = Settings(
        service={"data_dir": str(tmp_path / "var"), "floor_process": FLOOR_PROCESS},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        agents=[
            {"id": "a001", "name": "Zhang Wei", "number": "001", "extension": "1001",
             "password": "first-pw"},
            {"id": "a002", "name": "Li Na", "number": "002", "extension": "1002",
             "password": "second-pw"},
        ],
        desktop={"supervisors": [{"id": "sup", "name": "Sup", "password": "sup-pw"}]},
    )  # fmt: skip
    service = Service(settings, registry=CollectorRegistry())
    await service.start()
    base = f"http://{service.http_addresses[0]}"
    try:
        async with aiohttp.ClientSession() as s:

            async def token(user: str, password: str) -> str:
                async with s.post(
                    f"{base}/api/login", json={"user_id": user, "password": password}
                ) as r:
                    assert r.status == 200
                    return str((await r.json())["token"])

            async def opened(token: str) -> aiohttp.ClientWebSocketResponse:
                ws = await desktop_socket(s.ws_connect, f"{base}/ws/agent", token)
                assert (await ws.receive_json(timeout=5))["type"] == "hello"
                return ws

            async def refused(token: str) -> object:
                """The code the socket is closed with after its token."""
                ws = await desktop_socket(s.ws_connect, f"{base}/ws/agent", token)
                return await closed_with(ws)

            async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> object:
                """The code of the server's close frame."""
                while True:
                    msg = await ws.receive(timeout=5)
                    if msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                        return None
                    if msg.type is aiohttp.WSMsgType.CLOSE:
                        return msg.data

            auth = {"Authorization": f"Bearer {await token('sup', 'sup-pw')}"}
            first = await token("a001", "first-pw")
            ws = await opened(first)
            async with s.post(
                f"{base}/api/admin/agents/a001/password",
                json={"password": "new-secret"},
                headers=auth,
            ) as r:
                assert r.status == 200
            assert await closed_with(ws) == SESSION_ENDED
            assert await refused(first) == SESSION_ENDED
            ws = await opened(await token("a001", "new-secret"))  # the new password works

            second = await token("a002", "second-pw")
            ws2 = await opened(second)
            async with s.patch(
                f"{base}/api/admin/agents/a002", json={"enabled": False}, headers=auth
            ) as r:
                assert r.status == 200
            assert await closed_with(ws2) == SESSION_ENDED
            assert await refused(second) == SESSION_ENDED
            await ws.send_json({"v": 1, "type": "ping", "ref": "p"})  # a001's goes on
            assert (await ws.receive_json(timeout=5))["type"] == "pong"
            await ws.close()
    finally:
        await service.stop()


async def test_staff_from_the_file_then_the_database_with_their_roles_on_the_floor(
    tmp_path: Path,
) -> None:
    """Issue 18: the file's staff are seeded with their roles; a manager added
    through the API administers and has the floor; QA reads the worklist but
    not the floor; a member disabled loses their supervisors' socket at once;
    and after a restart the database's roles win over the file's."""
    settings = Settings(
        service={"data_dir": str(tmp_path / "var"), "floor_process": FLOOR_PROCESS},
        http={"port": free_port()},
        sip={"port": free_port(), "tls_port": free_port(), "transports": ["udp"]},
        desktop={"supervisors": [
            {"id": "sup", "name": "Sup", "password": "sup-pw"},
            {"id": "qa1", "name": "QA", "password": "qa-pw", "role": "qa"},
        ]},
    )  # fmt: skip
    for start in (1, 2):
        service = Service(settings, registry=CollectorRegistry())
        await service.start()
        try:
            await _staff_round(f"http://{service.http_addresses[0]}", first=start == 1)
        finally:
            await service.stop()


async def _staff_round(base: str, *, first: bool) -> None:
    async with aiohttp.ClientSession() as s:

        async def login(user: str, password: str) -> tuple[str, dict[str, str]]:
            async with s.post(
                f"{base}/api/login", json={"user_id": user, "password": password}
            ) as r:
                assert r.status == 200, user
                got = await r.json()
            return got["role"], {"Authorization": f"Bearer {got['token']}"}

        async def status(method: str, path: str, auth: dict[str, str], **kw: Any) -> int:
            async with s.request(method, f"{base}{path}", headers=auth, **kw) as r:
                return r.status

        role, qa = await login("qa1", "qa-pw")
        if not first:  # the database's role, not the file's
            assert role == "supervisor"
            return
        assert role == "qa"
        _, sup = await login("sup", "sup-pw")
        assert await status("GET", "/api/complaints", qa) == 200
        assert await status("GET", "/api/admin/staff", qa) == 403
        new = {"id": "boss", "name": "Manager", "role": "manager", "password": "boss-pw-1"}
        assert await status("POST", "/api/admin/staff", sup, json=new) == 201
        role, boss = await login("boss", "boss-pw-1")
        assert role == "manager"
        assert await status("GET", "/api/admin/staff", boss) == 200
        ws = await desktop_socket(s.ws_connect, f"{base}/ws/supervisor", boss["Authorization"][7:])
        assert (await ws.receive_json(timeout=5))["type"] == "hello"
        assert await status("PATCH", "/api/admin/staff/boss", sup, json={"enabled": False}) == 200
        while (await ws.receive(timeout=5)).type is aiohttp.WSMsgType.TEXT:
            pass
        assert ws.close_code == SESSION_ENDED
        assert await status("GET", "/api/admin/staff", boss) == 401
        patch = {"role": "supervisor"}
        assert await status("PATCH", "/api/admin/staff/qa1", sup, json=patch) == 200
        assert await status("GET", "/api/complaints", qa) == 401  # the old role's token


@pytest.mark.parametrize(
    ("openapi", "anyone", "agent", "supervisor"),
    [("supervisors", 401, 403, 200), ("public", 200, 200, 200), ("off", 404, 404, 404)],
)
async def test_who_reads_the_openapi_document_is_a_setting(
    openapi: Literal["supervisors", "public", "off"], anyone: int, agent: int, supervisor: int
) -> None:
    """Issue 16, item 16: the document was served to anyone, with no way to stop it."""
    sessions = Sessions()
    sessions.add_user("a1", "pw-a1", "agent")
    sessions.add_user("sup", "pw-sup", "supervisor")
    api = AdminApi(
        sessions, control=HandControl(), pool=None, to_queue=QueueSettings.config,
        openapi=openapi,
    )  # fmt: skip
    app = web.Application()
    app.add_routes(api.routes())
    async with TestClient(TestServer(app)) as client:
        answers = []
        agent_token = await sessions.login("a1", "pw-a1", "")
        for token in (None, agent_token, await sessions.login("sup", "pw-sup", "")):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            r = await client.get("/api/openapi.json", headers=headers)
            answers.append(r.status)
            if r.status == 200:
                assert (await r.json())["openapi"] == "3.1.0"
            if r.status == 401:
                assert r.headers["WWW-Authenticate"] == 'Bearer realm="callcenter"'
        assert answers == [anyone, agent, supervisor]
        # The API itself wants a supervisor whatever the setting.
        assert (await client.get("/api/admin/agents")).status == 401
