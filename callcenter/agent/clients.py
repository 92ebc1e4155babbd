"""One browser's websocket: a bounded queue of text and the task that writes it.

Every connection, an agent's or a supervisor's, has its own queue and writer:
what the desktop sends is queued, never awaited, so a slow or dead browser
holds up no one. When its queue is full the browser is disconnected (it
reconnects and, if an agent, replays what it missed with ``?since=N``).
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiohttp import WSCloseCode, web

from .auth import Login

__all__ = ["QUEUE_LIMIT", "Client"]

log = structlog.get_logger("callcenter.desktop")

QUEUE_LIMIT = 256  # messages waiting for one browser before it is dropped


class Client:
    """A connected browser (see the module docstring). `calls`: a supervisor's
    `floor.batch`es carry calls and other events (`supervisor.feed`). `token`: the
    session's, checked before each command; `ended`: the session ended, the socket
    is being closed."""

    __slots__ = ("calls", "dropped", "ended", "login", "narrowed", "queue", "team", "token", "ws")

    def __init__(self, ws: web.WebSocketResponse, login: Login, token: str) -> None:
        self.ws = ws
        self.login = login
        self.token = token
        self.queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_LIMIT)
        self.dropped = False
        self.ended = False
        self.calls = False
        # A team leader's floor is their team's (team_view.py): `team` None then
        # means no team, and they see no agent.
        self.narrowed = False
        self.team: str | None = None

    @property
    def view(self) -> str | None:
        """Which floor this client sees: None the whole, else a team's ("" for none)."""
        return (self.team or "") if self.narrowed else None

    def send(self, text: str) -> None:
        """Queue `text` for the browser; a browser whose queue is full is closed."""
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            if not self.dropped:
                self.dropped = True
                log.warning("slow desktop client dropped", user_id=self.login.user_id)
                asyncio.get_running_loop().create_task(
                    self.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too slow")
                )

    async def write(self) -> None:
        """Write what is queued until the connection closes (run as a task)."""
        with contextlib.suppress(ConnectionError, RuntimeError):
            while True:
                text = await self.queue.get()
                await self.ws.send_str(text)
