"""The supervisors' floor feed: the floor's events coalesced into one batch per interval.

Sending every event of the floor to every supervisor costs a frame per event
per supervisor: at a few hundred calls a second and fifty supervisors, tens of
thousands of frames a second, more than the service can spare. `FloorFeed`
collects the events between two batches instead, keeping what a live board
needs: the latest state of each agent and the latest event of each call (a
call answered and ended within one interval shows as ended; the day's counts
are in `board.figures`, which counts every event). `take` turns them into one
`floor.batch` message (messages.py), which the hub validates and serialises
once for every supervisor.

A batch is bounded: at most `limit` agents, calls and other subjects; the
events of subjects beyond that are counted in `omitted` (the next
`board.figures`, or `supervisor.board`, has the whole floor). Breach alerts do
not wait for a batch: the hub sends them at once (`alert`).
"""

from __future__ import annotations

import enum
from typing import Any, TypeVar

from callcenter.acd.events import AgentStateChanged, RingTicked, TargetBreached

from .messages import FloorAlert, FloorBatch

__all__ = ["BATCH_LIMIT", "FloorFeed", "alert", "event_fields"]

BATCH_LIMIT = 2_000  # subjects of each kind (agents, calls, others) in one batch

K = TypeVar("K")
V = TypeVar("V")


class FloorFeed:
    """The floor's events since the last batch: the latest per agent, per call, per subject."""

    def __init__(self, limit: int = BATCH_LIMIT) -> None:
        self.limit = limit
        self._agents: dict[str, tuple[float, AgentStateChanged]] = {}
        self._calls: dict[str, tuple[float, object]] = {}
        self._others: dict[tuple[str, object], tuple[float, object]] = {}
        self._events = 0
        self._omitted = 0
        self._since: float | None = None

    def __len__(self) -> int:
        return self._events

    def add(self, event: object, wall: float) -> None:
        """One event of the floor; the phone's own ring ticks are the agent's, not the floor's."""
        if isinstance(event, RingTicked) and event.leg_id is not None:
            return
        if self._since is None:
            self._since = wall
        self._events += 1
        call_id = getattr(event, "call_id", None)
        if isinstance(event, AgentStateChanged):
            kept = _latest(self._agents, event.agent_id, (wall, event), self.limit)
        elif isinstance(call_id, str):
            kept = _latest(self._calls, call_id, (wall, event), self.limit)
        else:
            fields = getattr(type(event), "__slots__", ())
            key = (type(event).__name__, getattr(event, fields[0], None) if fields else None)
            kept = _latest(self._others, key, (wall, event), self.limit)
        if not kept:
            self._omitted += 1

    def clear(self) -> None:
        self._agents.clear()
        self._calls.clear()
        self._others.clear()
        self._events = self._omitted = 0
        self._since = None

    def take(self, at: float) -> FloorBatch | None:
        """The batch of what happened since the last one (None: nothing did); starts afresh."""
        if not self._events or self._since is None:
            return None
        batch = FloorBatch.model_validate({
            "at": at,
            "since": self._since,
            "events": self._events,
            "omitted": self._omitted,
            "agents": [
                {"agent_id": e.agent_id, "state": e.state, "previous": e.previous,
                 "reason": e.reason, "at": wall}
                for wall, e in self._agents.values()
            ],
            "calls": [
                {"call_id": call_id, "event": type(e).__name__, "at": wall,
                 "data": event_fields(e)}
                for call_id, (wall, e) in self._calls.items()
            ],
            "other": [
                {"event": type(e).__name__, "at": wall, "data": event_fields(e)}
                for wall, e in self._others.values()
            ],
        })  # fmt: skip
        self.clear()
        return batch


def alert(event: TargetBreached, wall: float) -> FloorAlert:
    """A breach of the ring target, sent to supervisors at once."""
    return FloorAlert(event=type(event).__name__, at=wall, data=event_fields(event))


def event_fields(event: object) -> dict[str, Any]:
    """An event's fields as JSON values (enums by value, anything else as text)."""
    return {name: _plain(getattr(event, name)) for name in getattr(type(event), "__slots__", ())}


def _plain(value: object) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    return str(value)


def _latest(entries: dict[K, V], key: K, value: V, limit: int) -> bool:
    """Keep the latest value for `key`, ordered by its latest change; False when full."""
    if key in entries:
        del entries[key]
    elif len(entries) >= limit:
        return False
    entries[key] = value
    return True
