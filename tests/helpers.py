"""Small helpers shared by tests (import as ``tests.helpers``)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any


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
