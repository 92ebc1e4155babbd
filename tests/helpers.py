"""Small helpers shared by tests (import as ``tests.helpers``)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import asyncpg
from prometheus_client.parser import text_string_to_metric_families

#: The form tests that run the whole service, and work in either, run it in:
#: two processes (`service.floor_process`, as shipped) unless
#: CALLCENTER_TEST_ONE_PROCESS=1. scripts/test sets it for its first pass (pure
#: Python) and not for the compiled one, so both forms are tested.
FLOOR_PROCESS = os.environ.get("CALLCENTER_TEST_ONE_PROCESS") != "1"

MetricValue = Callable[..., float | None]


async def scrape(
    session: aiohttp.ClientSession, http_address: str, headers: dict[str, str] | None = None
) -> MetricValue:
    """The service's /metrics page, as `registry.get_sample_value` reads a
    registry: by sample name and labels; in either form of the service."""
    async with session.get(f"http://{http_address}/metrics", headers=headers) as response:
        assert response.status == 200, await response.text()
        page = await response.text()
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
    }

    def value(name: str, labels: dict[str, str] | None = None) -> float | None:
        return samples.get((name, frozenset((labels or {}).items())))

    return value


async def authenticate(ws: aiohttp.ClientWebSocketResponse, token: str) -> None:
    """A desktop websocket's first message: its session's token (docs/desktop.md)."""
    await ws.send_str(json.dumps({"v": 1, "type": "auth", "token": token}))


async def desktop_socket(
    connect: Callable[..., Any], url: str, token: str
) -> aiohttp.ClientWebSocketResponse:
    """A desktop websocket opened with `connect` (a session's or a test client's
    ``ws_connect``), its token sent."""
    ws: aiohttp.ClientWebSocketResponse = await connect(url)
    await authenticate(ws, token)
    return ws


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that is free right now (for TCP by default, or pass SOCK_DGRAM).

    Another process may take it before the caller binds it; tests that can
    bind port 0 themselves should do that instead.
    """
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class HandControl:
    """A `callcenter.control.CallControl` over plain functions, for tests that
    drive the desktop without a call path: commands to `command` (which may
    raise the ACD's errors), the floor from `snapshot` and `agent_view`."""

    def __init__(
        self,
        command: Callable[[Any], None] = lambda cmd: None,
        snapshot: Callable[[], Any] = lambda: None,
        agent_view: Callable[[str], Any] = lambda agent_id: None,
    ) -> None:
        self._command = command
        self._snapshot = snapshot
        self._agent_view = agent_view

    async def command(self, command: Any) -> None:
        self._command(command)

    async def administer(self, change: Any) -> None:
        raise NotImplementedError("no administration in this test")

    async def snapshot(self) -> Any:
        return self._snapshot()

    async def agent_view(self, agent_id: str) -> Any:
        return self._agent_view(agent_id)

    async def registrations(self) -> list[Any]:
        return []

    async def phone_reach(self) -> Any:
        return None


@contextlib.asynccontextmanager
async def connected(dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection to the service's database (`Service.dsn`), in either form."""
    conn = await asyncpg.connect(dsn)
    try:
        yield conn
    finally:
        await conn.close()
