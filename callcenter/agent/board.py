"""The supervisor board's figures: per agent and per queue, today and the last 15/30/60 minutes.

Theory of operation
-------------------
`FloorTally` counts from the ACD's events as the bus publishes them, each
with the wall-clock time it happened; it reads no clock itself, so a test
steps time by passing it. It keeps:

* per queue, today's counts (offered, answered, answered within the ring
  target, abandoned, short abandons, summed answer time) and the same counts
  in one-second buckets for the sliding windows, each window with a running
  total, so reading a window costs nothing however busy the queue is;
* per agent, today's calls handled (answered) and missed (ring-no-answer),
  and the seconds spent not ready (pause) and ready (idle), the open interval
  of the current state counted up to the moment of reading.

An event counts in the day and the windows in which it happened, as the
Prometheus counters of docs/metrics.md do. What a call adds to a queue's
counts, and to which queue (the one it was first queued in, as in the
records), is the one fold the metrics share (`acd.kpi.KpiFold`).

"Today" must survive a restart, and the counters do not: the records cover
the day up to the moment this tally started (`baseline`), and the tally
adds what happened since. At midnight the day's counts start again.

Sending the board
-----------------
A thousand agents' rows every two seconds to each of fifty supervisors is
most of what the supervisors cost, and most rows have not changed. So the
board's rows hold nothing that grows with the clock: an agent's row gives the
wall time its state began (`state_since`) and today's pause and idle time
before it, a waiting caller's the time the wait began, and the page adds the
time since. That start is read from the ACD's view as "now minus the seconds
elapsed", two clocks read a moment apart, so the first reading of a state
(or a wait) is kept while later ones are within `_SAME_START` of it: an
unchanged row is then the same row, to the bit. `BoardFeed` keeps the board
the supervisors have and turns each new one into what changed. A queue shows
its longest-waiting callers only (`WAITING_SHOWN`), with the count of all.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, fields
from datetime import datetime, tzinfo
from typing import Literal

from callcenter.acd.engine import AcdSnapshot, CallView
from callcenter.acd.events import AgentStateChanged, CallAnswered, CallClosed, OfferEnded
from callcenter.acd.kpi import KpiFold
from callcenter.acd.queues import QueueConfig, nobody_since, queue_status
from callcenter.tasks import run_steps

from .messages import AgentFigures, BoardFigures, PeriodFigures, QueueFigures, WaitingCaller

__all__ = [
    "ROWS_PER_STEP",
    "WAITING_SHOWN",
    "WINDOWS",
    "AgentCounts",
    "BoardFeed",
    "FloorTally",
    "QueueCounts",
    "day_start",
]

WINDOWS = (15 * 60, 30 * 60, 60 * 60)  # the sliding windows, seconds
WAITING_SHOWN = 20  # waiting callers listed per queue (the longest-waiting); all are counted
ROWS_PER_STEP = 20  # agents' rows built between two turns of the event loop (FloorTally.steps)
_OPEN_CALLS_LIMIT = 100_000  # calls remembered for their queue (events lost on the bus leak)
_SAME_START = 1.0  # seconds: readings of a state's start this close are the same start


def day_start(wall: float, tz: tzinfo | None = None) -> float:
    """Wall time of the midnight that began the day of `wall` (local time if `tz` is None)."""
    local = datetime.fromtimestamp(wall, tz) if tz is not None else datetime.fromtimestamp(wall)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.timestamp()


@dataclass(slots=True)
class QueueCounts:
    """Additive counts of one queue over some period."""

    offered: int = 0
    answered: int = 0
    answered_within_target: int = 0
    abandoned: int = 0  # short abandons included
    short_abandons: int = 0
    answer_seconds: float = 0.0  # summed over answered calls
    closed: int = 0  # turned away at arrival: closed (not offered)
    no_agent: int = 0  # turned away at arrival: nobody there (not offered)

    def add(self, other: QueueCounts, sign: int = 1) -> None:
        self.offered += sign * other.offered
        self.answered += sign * other.answered
        self.answered_within_target += sign * other.answered_within_target
        self.abandoned += sign * other.abandoned
        self.short_abandons += sign * other.short_abandons
        self.answer_seconds += sign * other.answer_seconds
        self.closed += sign * other.closed
        self.no_agent += sign * other.no_agent

    def figures(self) -> PeriodFigures:
        """The docs/metrics.md definitions; None where the base is zero."""
        base = self.offered - self.short_abandons
        return PeriodFigures(
            offered=self.offered,
            answered=self.answered,
            answered_within_target=self.answered_within_target,
            abandoned=self.abandoned,
            short_abandons=self.short_abandons,
            service_level=round(self.answered_within_target / base, 4) if base > 0 else None,
            abandonment_rate=(
                round((self.abandoned - self.short_abandons) / base, 4) if base > 0 else None
            ),
            asa_seconds=round(self.answer_seconds / self.answered, 2) if self.answered else None,
            closed=self.closed,
            no_agent=self.no_agent,
        )


@dataclass(slots=True)
class AgentCounts:
    handled: int = 0
    missed: int = 0
    pause_seconds: float = 0.0
    idle_seconds: float = 0.0


class _Window:
    """The last `seconds` of one queue: one-second buckets and their running total."""

    __slots__ = ("buckets", "seconds", "total")

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        self.buckets: deque[tuple[int, QueueCounts]] = deque()
        self.total = QueueCounts()

    def expire(self, now: float) -> None:
        # Bucket s holds [s, s + 1): it leaves once all of it is older than the window.
        edge = now - self.seconds
        while self.buckets and self.buckets[0][0] + 1 <= edge:
            self.total.add(self.buckets.popleft()[1], -1)


class _QueueTally:
    __slots__ = ("bucket", "second", "today", "windows")

    def __init__(self) -> None:
        self.today = QueueCounts()
        self.windows = tuple(_Window(w) for w in WINDOWS)
        self.second = -1
        self.bucket = QueueCounts()

    def add(self, delta: QueueCounts, wall: float) -> None:
        self.today.add(delta)
        second = int(wall)
        if second > self.second:  # a clock that steps back adds to the last bucket
            self.second, self.bucket = second, QueueCounts()
            for window in self.windows:
                window.buckets.append((second, self.bucket))
        self.bucket.add(delta)
        for window in self.windows:
            window.total.add(delta)


@dataclass(slots=True)
class _AgentTally:
    today: AgentCounts
    state: str = "offline"
    since: float = 0.0


class FloorTally:
    """See the module docstring. `started` is the wall time the tally begins
    counting: the records cover the day before it. The board lists the
    `waiting_shown` longest-waiting callers of each queue."""

    def __init__(
        self, started: float, *, tz: tzinfo | None = None, waiting_shown: int = WAITING_SHOWN
    ) -> None:
        self.started = started
        self.waiting_shown = waiting_shown
        self._tz = tz
        self._day = day_start(started, tz)
        self._next_day = day_start(self._day + 26 * 3600, tz)
        self._queues: dict[str, _QueueTally] = {}
        self._agents: dict[str, _AgentTally] = {}
        self._kpi = KpiFold(_OPEN_CALLS_LIMIT)
        self._base_day: float | None = None
        self._base_queues: dict[str, QueueCounts] = {}
        self._base_agents: dict[str, AgentCounts] = {}
        # The start of each agent's state and each caller's wait, as first read (module docstring).
        self._state_since: dict[str, tuple[str, float]] = {}
        self._waiting_since: dict[str, float] = {}
        # The queues' configurations, for their status (closed, nobody there).
        self.queue_configs: dict[str, QueueConfig] = {}

    @property
    def day(self) -> float:
        """Wall time of the midnight that began the tally's current day."""
        return self._day

    def baseline(
        self, day: float, queues: dict[str, QueueCounts], agents: dict[str, AgentCounts]
    ) -> None:
        """The records' figures for [`day`, `started`): added to today's while it is that day."""
        self._base_day, self._base_queues, self._base_agents = day, dict(queues), dict(agents)

    @property
    def has_baseline(self) -> bool:
        return self._base_day == self._day

    @property
    def complete(self) -> bool:
        """Whether today's figures cover the whole day so far."""
        return self.has_baseline or self.started <= self._day

    def _roll(self, wall: float) -> None:
        if wall < self._next_day:
            return
        self._day = day_start(wall, self._tz)
        self._next_day = day_start(self._day + 26 * 3600, self._tz)
        for queue in self._queues.values():
            queue.today = QueueCounts()
        for agent in self._agents.values():
            agent.today = AgentCounts()

    def _queue(self, name: str) -> _QueueTally:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = _QueueTally()
        return queue

    def _agent(self, agent_id: str) -> _AgentTally:
        agent = self._agents.get(agent_id)
        if agent is None:
            agent = self._agents[agent_id] = _AgentTally(AgentCounts())
        return agent

    def _state_seconds(self, agent: _AgentTally, until: float) -> tuple[float, float]:
        """(pause, idle) seconds of the agent's current state, from today's start to `until`."""
        seconds = max(0.0, until - max(agent.since, self._day))
        if agent.state == "not-ready":
            return seconds, 0.0
        if agent.state == "ready":
            return 0.0, seconds
        return 0.0, 0.0

    def observe(self, event: object, wall: float) -> None:
        """Count one event that happened at `wall`."""
        self._roll(wall)
        kpi = self._kpi.observe(event)
        if kpi is not None:
            self._queue(kpi.queue).add(
                QueueCounts(
                    offered=kpi.offered,
                    answered=kpi.answered,
                    answered_within_target=kpi.answered_within_target,
                    abandoned=kpi.abandoned,
                    short_abandons=kpi.short_abandons,
                    answer_seconds=kpi.answer_seconds,
                ),
                wall,
            )
        match event:
            case CallClosed(queue=queue, reason=reason):
                turned_away = (
                    QueueCounts(closed=1) if reason == "closed" else QueueCounts(no_agent=1)
                )
                self._queue(queue).add(turned_away, wall)
            case CallAnswered():
                self._agent(event.agent_id).today.handled += 1
            case OfferEnded(agent_id=agent_id, outcome="missed"):
                self._agent(agent_id).today.missed += 1
            case AgentStateChanged(agent_id=agent_id, state=state):
                agent = self._agent(agent_id)
                pause, idle = self._state_seconds(agent, wall)
                agent.today.pause_seconds += pause
                agent.today.idle_seconds += idle
                agent.state, agent.since = state, wall

    def queue_today(self, name: str) -> QueueCounts:
        total = QueueCounts()
        if self.has_baseline and name in self._base_queues:
            total.add(self._base_queues[name])
        queue = self._queues.get(name)
        if queue is not None:
            total.add(queue.today)
        return total

    def queue_window(self, name: str, seconds: int, now: float) -> QueueCounts:
        queue = self._queues.get(name)
        if queue is None:
            return QueueCounts()
        window = queue.windows[WINDOWS.index(seconds)]
        window.expire(now)
        total = QueueCounts()
        total.add(window.total)
        return total

    def agent_today(self, agent_id: str, now: float | None) -> AgentCounts:
        """Today's counts of one agent up to `now`; None: up to the start of its current state."""
        total = AgentCounts()
        base = self._base_agents.get(agent_id) if self.has_baseline else None
        agent = self._agents.get(agent_id)
        for counts in (base, agent.today if agent is not None else None):
            if counts is not None:
                for f in fields(AgentCounts):
                    setattr(total, f.name, getattr(total, f.name) + getattr(counts, f.name))
        if agent is not None and now is not None:
            pause, idle = self._state_seconds(agent, now)
            total.pause_seconds += pause
            total.idle_seconds += idle
        return total

    def _status(
        self, name: str, staff: list[tuple[str, float, tuple[str, ...]]], now: float, known: bool
    ) -> Literal["open", "closed", "no-agent"]:
        """The queue's status at `now` (wall time), by the rule the ACD follows; a
        floor not known (no snapshot) says nothing of who is there."""
        config = self.queue_configs.get(name)
        if config is None:
            return "open"
        empty = nobody_since(config, staff) if known else None
        status = queue_status(config, now, empty, now)
        return "closed" if status == "closed" else "no-agent" if status == "no-agent" else "open"

    def figures(self, snapshot: AcdSnapshot | None, now: float) -> BoardFigures:
        """The whole board at `now` (wall time): the ACD's view plus the counts.

        Not numbered yet (`seq` 0): `BoardFeed` numbers what goes out."""
        return run_steps(self.steps(snapshot, now))

    def steps(
        self, snapshot: AcdSnapshot | None, now: float
    ) -> Generator[None, None, BoardFigures]:
        """`figures` in steps: it yields after every `ROWS_PER_STEP` agents' rows and
        returns the board. With a thousand agents the whole board takes the event
        loop for 10-20 ms; taken in steps, a screen pop due meanwhile goes out
        between two of them rather than after all (`DesktopHub`). Counts that
        change between two steps show in the rows built after."""
        self._roll(now)
        queue_names = list(dict.fromkeys([
            *(q.name for q in (snapshot.queues if snapshot is not None else ())),
            *self._queues, *(self._base_queues if self.has_baseline else ()),
        ]))  # fmt: skip
        waiting: dict[str, list[CallView]] = {}
        callers: dict[str, str] = {}
        for call in snapshot.calls if snapshot is not None else ():
            callers[call.call_id] = call.caller
            if call.state == "waiting":
                waiting.setdefault(call.queue, []).append(call)
        waiting_since: dict[str, float] = {}
        queues = []
        staff = [
            (a.state, now - a.seconds_in_state, a.groups)
            for a in (snapshot.agents if snapshot is not None else ())
        ]
        for name in queue_names:
            w15, w30, w60 = (self.queue_window(name, s, now).figures() for s in WINDOWS)
            calls = waiting.get(name, [])
            # The longest-waiting few; a stable sort keeps the ACD's order among equals.
            shown = heapq.nlargest(self.waiting_shown, calls, key=lambda c: c.wait_seconds)
            rows = []
            for call in shown:
                since = _steady(self._waiting_since.get(call.call_id), now - call.wait_seconds)
                waiting_since[call.call_id] = since
                rows.append(
                    WaitingCaller(
                        call_id=call.call_id,
                        caller=call.caller,
                        waiting_since=since,
                        ring=call.ring,
                        breached=call.breached,
                        agents_ringing=len(call.agents_ringing),
                    )
                )
            queues.append(
                QueueFigures(
                    name=name,
                    waiting_count=len(calls),
                    waiting=rows,
                    longest_waiting_since=rows[0].waiting_since if rows else None,
                    status=self._status(name, staff, now, snapshot is not None),
                    today=self.queue_today(name).figures(),
                    last_15m=w15,
                    last_30m=w30,
                    last_60m=w60,
                )
            )
        state_since: dict[str, tuple[str, float]] = {}
        agents = []
        for n, view in enumerate(snapshot.agents if snapshot is not None else (), 1):
            if n % ROWS_PER_STEP == 0:
                yield
            counts = self.agent_today(view.agent_id, None)
            seen = self._state_since.get(view.agent_id)
            since = _steady(
                seen[1] if seen is not None and seen[0] == view.state else None,
                now - view.seconds_in_state,
            )
            state_since[view.agent_id] = (view.state, since)
            agents.append(
                AgentFigures(
                    agent_id=view.agent_id,
                    name=view.name,
                    number=view.number,
                    state=view.state,
                    reason=view.reason,
                    state_since=since,
                    current_call=view.current_call,
                    current_caller=callers.get(view.current_call or ""),
                    handled=counts.handled,
                    missed=counts.missed,
                    pause_seconds=round(counts.pause_seconds, 1),
                    idle_seconds=round(counts.idle_seconds, 1),
                )
            )
        self._waiting_since, self._state_since = waiting_since, state_since
        return BoardFigures(
            full=True,
            seq=0,
            at=now,
            day_started=self._day,
            counted_since=self._day if self.complete else self.started,
            queues=queues,
            agents=agents,
        )


def _steady(seen: float | None, reading: float) -> float:
    """A start time as first read: later readings within `_SAME_START` of it are it."""
    if seen is not None and abs(reading - seen) <= _SAME_START:
        return seen
    return round(reading, 1)


class BoardFeed:
    """The board as the supervisors have it: whole once, then what changed.

    `update` takes the whole board each period and returns the one message for
    every supervisor: the agent and queue rows that differ from the previous
    board's, the ids that left it, numbered (`seq`) so that a page can tell it
    missed one. A supervisor who connects in between must not get a change
    against a board it never saw: `whole` is the board as of the last message,
    which the next change applies to (serialised once, whoever asks).
    """

    def __init__(self) -> None:
        self._board: BoardFigures | None = None
        self._agents: dict[str, AgentFigures] = {}
        self._queues: dict[str, QueueFigures] = {}
        self._seq = 0
        self._whole: str | None = None

    @property
    def board(self) -> BoardFigures | None:
        """The whole board as of the last message (None: none yet, or reset)."""
        return self._board

    def update(self, board: BoardFigures) -> BoardFigures:
        """The message that takes the supervisors from the previous board to `board`
        (the whole of it, the first time)."""
        agents = {a.agent_id: a for a in board.agents}
        queues = {q.name: q for q in board.queues}
        self._seq += 1
        if self._board is None:
            change = board.model_copy(update={"full": True, "seq": self._seq})
        else:
            change = BoardFigures(
                full=False,
                seq=self._seq,
                at=board.at,
                day_started=board.day_started,
                counted_since=board.counted_since,
                queues=[q for q in board.queues if self._queues.get(q.name) != q],
                agents=[a for a in board.agents if self._agents.get(a.agent_id) != a],
                removed_queues=[name for name in self._queues if name not in queues],
                removed_agents=[agent_id for agent_id in self._agents if agent_id not in agents],
            )
        self._board, self._agents, self._queues, self._whole = board, agents, queues, None
        return change

    def whole(self) -> str:
        """The whole board as of the last message, as JSON (`full`, that message's `seq`)."""
        if self._board is None:
            raise LookupError("no board yet: update first")
        if self._whole is None:
            whole = self._board.model_copy(update={"full": True, "seq": self._seq})
            self._whole = whole.model_dump_json()
        return self._whole

    def reset(self) -> None:
        """Nobody has the board any more: the next update is whole again."""
        self._board, self._whole = None, None
        self._agents.clear()
        self._queues.clear()
