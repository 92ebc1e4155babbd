"""Queue configuration and the waiting line (pure)."""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

from .ringclock import Cadence
from .schedule import Schedule

__all__ = [
    "Escalation", "Overflow", "QueueConfig", "Strategy", "nobody_since", "overflow_cycle",
    "queue_status",
]  # fmt: skip


class Strategy(enum.Enum):
    LONGEST_IDLE = "longest-idle"
    ROUND_ROBIN = "round-robin"
    FEWEST_CALLS = "fewest-calls"
    RING_ALL = "ring-all"
    SKILL = "skill"  # highest skill level first, then longest idle


class Escalation(enum.Enum):
    """What happens when ring 3 ends unanswered (the three-ring target is breached)."""

    RING_ALL = "ring-all"  # ring every ready agent of the group at once
    OVERFLOW = "overflow"  # send the call to the overflow target
    NONE = "none"  # keep ringing one agent at a time (the breach is still recorded)


@dataclass(frozen=True, slots=True)
class Overflow:
    """Where a call goes when the queue cannot take it.

    `kind` is "queue" (another queue of this service), "number" (redirect the
    caller, 302, to a number at the PBX) or "reject" (480 with Retry-After).
    """

    kind: str = "reject"
    target: str = ""
    retry_after: int = 60

    def __post_init__(self) -> None:
        if self.kind not in ("queue", "number", "reject"):
            raise ValueError(f"overflow kind must be queue, number or reject, not {self.kind!r}")
        if self.kind != "reject" and not self.target:
            raise ValueError(f"overflow to a {self.kind} needs a target")


@dataclass(frozen=True, slots=True)
class QueueConfig:
    name: str
    numbers: tuple[str, ...]  # hotline numbers (Request-URI users) that reach this queue
    group: str
    strategy: Strategy = Strategy.LONGEST_IDLE
    priority: int = 0  # higher is served first when agents are shared
    cadence: Cadence = field(default_factory=lambda: Cadence.of("cn"))
    answer_within_rings: int = 3
    agent_ring_limit: int = 2  # rings an agent's phone may ring before the next agent
    max_no_answer: int = 1  # consecutive misses before the agent goes not-ready
    escalation: Escalation = Escalation.RING_ALL
    max_wait: float = 300.0  # seconds in the queue before overflow
    max_length: int = 100  # waiting calls; more are overflowed at once
    overflow: Overflow = field(default_factory=Overflow)
    wrap_up: float = 15.0  # seconds after each call before the agent is ready again
    # Wrap-up lasts until the desktop says the call's record is saved (it ends the
    # agent's wrap-up), for at most wrap_up_record_limit seconds, instead of wrap_up.
    wrap_up_until_record: bool = False
    wrap_up_record_limit: float = 300.0
    busy_cooldown: float = 10.0  # an agent whose phone said busy is skipped this long
    decline_cooldown: float = 30.0
    short_abandon: float = 5.0  # abandons quicker than this are counted apart
    setup_timeout: float = 4.0  # an agent phone that does not ring within this is unreachable
    # Opening hours (None: always open) and what a caller gets while the queue is
    # closed, at arrival and when it closes with callers waiting (docs/acd.md).
    schedule: Schedule | None = None
    closed_action: Overflow = field(default_factory=Overflow)
    # Nobody there: no agent of the group logged in, or every one logged in not
    # ready for no_agent_after seconds. None: callers wait (until max_wait).
    no_agent_action: Overflow | None = None
    no_agent_after: float = 60.0
    # A caller who rings again within keep_place seconds of abandoning this queue
    # takes the place their abandoned call had, ahead of the callers who came
    # after it (0: off; docs/acd.md, "Keeping an abandoned caller's place").
    keep_place: float = 0.0

    def action_for(self, reason: str) -> Overflow:
        """What a caller turned away for `reason` ("closed", "no-agent") gets."""
        if reason == "no-agent" and self.no_agent_action is not None:
            return self.no_agent_action
        return self.closed_action

    @property
    def wrap_up_seconds(self) -> float:
        """How long the agent's wrap-up after a call of this queue lasts at most."""
        return self.wrap_up_record_limit if self.wrap_up_until_record else self.wrap_up

    @property
    def target_seconds(self) -> float:
        """Answered before this (ring `answer_within_rings` + 1 starts) meets the target."""
        return self.answer_within_rings * self.cadence.cycle


def nobody_since(
    queue: QueueConfig, agents: Iterable[tuple[str, float, Collection[str]]]
) -> float | None:
    """From when `queue` counts as empty (docs/acd.md, "Opening hours and nobody
    there"), given its agents as (state, the time the state began, groups): -inf
    when no agent of its group is logged in, `no_agent_after` after the last of
    them went not-ready when all are; None while one is ready, ringing, on a call
    or in wrap-up. The ACD asks on its clock, the supervisors' board on the wall's."""
    group = queue.group
    latest: float | None = None
    for state, since, groups in agents:
        if group not in groups or state == "offline":
            continue
        if state != "not-ready":
            return None
        if latest is None or since > latest:
            latest = since
    return float("-inf") if latest is None else latest + queue.no_agent_after


def queue_status(queue: QueueConfig, wall: float, empty_since: float | None, now: float) -> str:
    """ "closed" (outside its hours at `wall`), "no-agent" (nobody there since
    `empty_since`, on the clock of `now`, and it has a no-agent action), or "open"."""
    if queue.schedule is not None and not queue.schedule.is_open(wall):
        return "closed"
    if queue.no_agent_action is not None and empty_since is not None and empty_since <= now:
        return "no-agent"
    return "open"


def overflow_cycle(targets: Mapping[str, str], start: str | None = None) -> tuple[str, ...] | None:
    """A circle of overflows to queues, or None: the queues in order with the first
    again at the end (``("a", "b", "a")``; ``("a", "a")`` overflows to itself).

    `targets` maps a queue's name to the queue it overflows to (queues that
    overflow to a number or reject are left out). With `start`, only the
    overflows from that queue are followed. A call overflowed into such a
    circle would come back to a queue it has left: the settings and the
    administration refuse them, and the ACD rejects a call that would
    (docs/acd.md).
    """
    done: set[str] = set()
    for first in (start,) if start is not None else targets:
        path: list[str] = []
        name: str | None = first
        while name is not None and name not in done:
            if name in path:
                return (*path[path.index(name) :], name)
            path.append(name)
            name = targets.get(name)
        done.update(path)
    return None
