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
`board.figures`, or `supervisor.board`, has the whole floor).

Breach alerts do not wait for a batch, but a burst of them (a queue with no
one free breaches call after call) must not become a frame per alert per
supervisor either. `AlertBurst` throttles on the leading edge: an alert when
none went out for a window (`ALERT_WINDOW`) goes at once, so a supervisor sees
a breach as it happens; the alerts that follow within the window wait for its
end and go together, in order, in one `floor.alerts`, which starts the next
window. A window with nothing to send ends the burst. Like the cores, it takes
`now` (monotonic seconds) and says when it next needs the time
(`next_deadline`); the hub keeps one timer for it.
"""

from __future__ import annotations

import enum
from typing import Any, TypeVar

from callcenter.acd.events import AgentStateChanged, RingTicked, TargetBreached
from callcenter.events import field_names

from .messages import Alert, FloorAlerts, FloorBatch

__all__ = [
    "ALERT_LIMIT",
    "ALERT_WINDOW",
    "BATCH_LIMIT",
    "AlertBurst",
    "FloorFeed",
    "alert",
    "event_fields",
]

BATCH_LIMIT = 2_000  # subjects of each kind (agents, calls, others) in one batch
ALERT_WINDOW = 0.25  # seconds: alerts after the first of a burst wait at most this long
ALERT_LIMIT = 500  # alerts in one frame; a longer wait goes in several, in order

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
            fields = field_names(type(event))
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

    def take(self, at: float, calls: bool = True) -> FloorBatch | None:
        """The batch of what happened since the last one (None: nothing did); starts
        afresh. Without `calls`, its `calls` and `other` are left empty (not built)."""
        if not self._events or self._since is None:
            return None
        if not calls:
            self._calls.clear()
            self._others.clear()
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


class AlertBurst:
    """Breach alerts on their way to supervisors: see the module docstring."""

    def __init__(self, window: float = ALERT_WINDOW, limit: int = ALERT_LIMIT) -> None:
        self.window = window
        self.limit = limit
        self._waiting: list[Alert] = []
        self._window_ends: float | None = None  # until then, alerts wait

    def add(self, alert: Alert, now: float) -> list[FloorAlerts]:
        """One alert: the frame to send at once, or nothing if it waits for the window's end."""
        if not self._waiting and (self._window_ends is None or now >= self._window_ends):
            self._window_ends = now + self.window
            return [FloorAlerts(alerts=[alert])]
        self._waiting.append(alert)  # after those already waiting, even if the timer is late
        return []

    def on_timer(self, now: float) -> list[FloorAlerts]:
        """At the window's end, what waited: in frames of at most `limit` alerts (early: none)."""
        if not self._waiting or self._window_ends is None or now < self._window_ends:
            return []
        waiting, self._waiting = self._waiting, []
        self._window_ends = now + self.window  # the burst may go on: so does the throttle
        return [
            FloorAlerts(alerts=waiting[i : i + self.limit])
            for i in range(0, len(waiting), self.limit)
        ]

    def next_deadline(self) -> float | None:
        """When alerts wait: the end of their window (a window with none ends by itself)."""
        return self._window_ends if self._waiting else None

    def clear(self) -> None:
        self._waiting.clear()
        self._window_ends = None


def alert(event: TargetBreached, wall: float) -> Alert:
    """A breach of the ring target, for `floor.alerts`."""
    return Alert(event=type(event).__name__, at=wall, data=event_fields(event))


def event_fields(event: object) -> dict[str, Any]:
    """An event's fields as JSON values (enums by value, anything else as text)."""
    return {name: _plain(getattr(event, name)) for name in field_names(type(event))}


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
