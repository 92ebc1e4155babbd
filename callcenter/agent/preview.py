"""Call-backs offered to free agents (preview, docs/callbacks.md "Preview").

A queue with ``preview_callbacks = true`` lets its group's agents be offered
the next call-back due while they are free: when an agent becomes ready, or
asks (`agent.preview`), and no caller waits in any queue of their groups
(inbound calls always come first), the next item of the worklist they may
work (`records.callbacks.search` in their scope, due now, oldest first) is
sent as `callback.preview`; the agent calls it (`agent.dial` naming the
item) or skips it (`agent.preview_skip`), which is remembered for their
session (the last `SKIPS_KEPT`) and answered with the next.

The floor is read from the desktop's read model (who is in which group, who
waits where); the item from an injected function (the records). Neither
answering within `PREVIEW_LIMIT` seconds is an `error` reply (`unavailable`),
logged at most once per 10 s.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from callcenter.acd.engine import AcdSnapshot
from callcenter.clock import Clock
from callcenter.records.callbacks import StoredItem
from callcenter.throttle import SuppressedLog

from .replies import CallbackPreview, ErrorReply

__all__ = ["OFF", "PREVIEW_LIMIT", "SKIPS_KEPT", "NextItemFn", "Previews"]

log = structlog.get_logger("callcenter.desktop")

PREVIEW_LIMIT = 2.0  # seconds the floor and the records have to say what to offer
SKIPS_KEPT = 100  # items one agent's session remembers skipping

OFF = "call-backs are not offered in your queues"

#: The next item due for an agent, those they skipped left out: (agent, skipped ids).
NextItemFn = Callable[[str, frozenset[int]], Awaitable[StoredItem | None]]
#: The floor now (None while the call path is starting).
FloorFn = Callable[[], Awaitable[AcdSnapshot | None]]

Answer = CallbackPreview | ErrorReply


class Previews:
    def __init__(
        self,
        next_item: NextItemFn | None,
        floor: FloorFn,
        clock: Clock,
        *,
        queue_groups: dict[str, str] | None = None,
        preview: frozenset[str] = frozenset(),
    ) -> None:
        self._next_item = next_item
        self._floor = floor
        self._clock = clock
        self._groups = dict(queue_groups or {})  # queue -> its agent group
        self._preview = set(preview)  # queues whose agents are offered call-backs
        # Per agent: the session whose skips are kept, and the items skipped in it.
        self._sessions: dict[str, str] = {}
        self._skipped: dict[str, OrderedDict[int, None]] = {}
        # Per agent with an item on their card: the queues a caller of which withdraws it.
        self._open: dict[str, frozenset[str]] = {}
        self._log = SuppressedLog(10.0)

    def configure(self, queue: str, group: str | None, preview: bool) -> None:
        """A queue's configuration changed (the administration)."""
        if group is not None:
            self._groups[queue] = group
        if preview:
            self._preview.add(queue)
        else:
            self._preview.discard(queue)

    def offered_in(self, queue: str) -> bool:
        return queue in self._preview

    def session(self, agent_id: str, session: str) -> None:
        """The agent's socket is of `session`: a new session forgets the old one's skips."""
        if self._sessions.get(agent_id) != session:
            self._sessions[agent_id] = session
            self._skipped.pop(agent_id, None)

    def skip(self, agent_id: str, item_id: int) -> None:
        skipped = self._skipped.setdefault(agent_id, OrderedDict())
        skipped[item_id] = None
        skipped.move_to_end(item_id)
        while len(skipped) > SKIPS_KEPT:
            skipped.popitem(last=False)

    @property
    def active(self) -> bool:
        """Is any queue's agents offered call-backs (and the records there to say which)?"""
        return bool(self._preview) and self._next_item is not None

    async def offer(self, agent_id: str, ref: str | None, *, asked: bool) -> Answer | None:
        """What to send the agent: the next item (or none, when there is none);
        when nothing may be offered, the reason if they asked, else nothing."""
        if not asked and not self.active:
            return None
        if not self._preview:  # nowhere: not an error, whether the records are on or not
            return CallbackPreview(ref=ref, item=None, reason=OFF)
        if self._next_item is None:
            return ErrorReply(
                code="unavailable", message="records are off: no call-backs to offer", ref=ref
            )
        try:
            async with asyncio.timeout(PREVIEW_LIMIT):
                snapshot = await self._floor()
        except Exception as exc:
            self._not_read("floor not read for a preview", agent_id, exc)
            return ErrorReply(
                code="unavailable", message="the floor is not known yet, retry", ref=ref
            )
        reason = self._blocked(snapshot, agent_id, asked)
        self._open.pop(agent_id, None)
        if reason is not None:
            return CallbackPreview(ref=ref, item=None, reason=reason) if asked else None
        skipped = frozenset(self._skipped.get(agent_id, ()))
        try:
            async with asyncio.timeout(PREVIEW_LIMIT):
                item = await self._next_item(agent_id, skipped)
        except Exception as exc:  # the database is down: the agent may ask again
            self._not_read("call-back not read for a preview", agent_id, exc)
            return ErrorReply(
                code="unavailable",
                message="call-backs unavailable: the records did not answer, retry",
                ref=ref,
            )
        if item is not None and snapshot is not None:
            self._open[agent_id] = self._queues_of(snapshot, agent_id)
        return CallbackPreview(ref=ref, item=None if item is None else wire(item))

    def withdrawn(self, queue: str) -> list[str]:
        """A caller began waiting in `queue`: the agents whose card showed an item
        and who answer that queue (inbound calls first); their offers are over."""
        agents = [a for a, queues in self._open.items() if queue in queues]
        for agent_id in agents:
            del self._open[agent_id]
        return agents

    def _queues_of(self, snapshot: AcdSnapshot, agent_id: str) -> frozenset[str]:
        agent = next((a for a in snapshot.agents if a.agent_id == agent_id), None)
        groups = agent.groups if agent is not None else ()
        return frozenset(q for q, group in self._groups.items() if group in groups)

    def _blocked(self, snapshot: AcdSnapshot | None, agent_id: str, asked: bool) -> str | None:
        """Why this agent may not be offered a call-back now; None when they may."""
        if snapshot is None:
            return "the call path is starting"
        agent = next((a for a in snapshot.agents if a.agent_id == agent_id), None)
        if agent is None or agent.state == "offline":
            return "you are not logged in"
        if not asked and agent.state != "ready":
            return "you are not ready"  # offered a call meanwhile, or gone not ready
        mine = self._queues_of(snapshot, agent_id)
        if not mine & self._preview:
            return OFF
        if any(q.waiting > 0 for q in snapshot.queues if q.name in mine):
            return "callers are waiting"
        return None

    def _not_read(self, what: str, agent_id: str, exc: Exception) -> None:
        count = self._log.hit(what, self._clock.monotonic())
        if count is not None:
            log.warning(what, count=count, last_agent=agent_id, error=str(exc) or repr(exc))


def wire(item: StoredItem) -> dict[str, Any]:
    """The item as `callback.preview` carries it."""
    return {
        "id": item.id,
        "kind": item.work.kind.value,
        "number": item.number,
        "queue": item.queue,
        "owed_since": item.work.owed_since.timestamp(),
        "attempts": item.work.attempts,
        "max_attempts": item.work.max_attempts,
    }
