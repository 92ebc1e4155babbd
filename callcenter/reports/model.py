"""A report's figures as plain values (docs/reports.md, "Contents"). Pure.

Counts are read from the records by `callcenter.records.reports.gather`; the
rates are derived here, once, with the definitions of docs/metrics.md (the
same as the board's and the PromQL's):

* service level (in rings) = answered within the ring target / (offered − short abandons)
* Asterisk SL = answered within the target / answered
* Asterisk SL2 = (answered within the target + abandoned within it) / (answered + abandoned)
* abandonment rate = (abandoned − short abandons) / (offered − short abandons)
* ASA = answer seconds / answered
* the centre's satisfaction = the agents' summed: asked, scored, mean = score sum / scored

A rate whose base is zero is None (shown as "–"), never 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from .period import Period

__all__ = [
    "RING_BUCKETS",
    "AgentFigures",
    "CallbackFigures",
    "CategoryFigures",
    "ComplaintFigures",
    "QueueFigures",
    "Report",
    "ratio",
]

#: The answer-time distribution's buckets: answered at ring 1 … 6, and later ("7+").
RING_BUCKETS = 7


def ratio(part: float, whole: float) -> float | None:
    return None if whole <= 0 else part / whole


@dataclass(frozen=True, slots=True)
class QueueFigures:
    """The calls that arrived in a period (or one day, or one hour of day) in one
    queue, or in the whole centre (`queue` ""), counted as docs/metrics.md counts."""

    queue: str
    offered: int = 0
    answered: int = 0
    answered_within_target: int = 0
    abandoned: int = 0  # short abandons included
    short_abandons: int = 0
    abandoned_within_target: int = 0  # abandons before the ring target ended (SL2)
    failed: int = 0  # pbx-timeout, elsewhere, refused: offered, neither answered nor abandoned
    overflowed: int = 0  # sent on to a number or rejected (the overflow's "queue" kind excluded)
    interrupted: int = 0  # a crash of the service ended them
    closed: int = 0  # turned away at arrival, the queue closed: not offered
    no_agent: int = 0  # turned away at arrival, nobody there: not offered
    answer_seconds: float = 0.0  # the sum of answered calls' answer times
    longest_wait_seconds: float | None = None  # the longest wait of a caller, answered or not

    @property
    def service_level(self) -> float | None:
        return ratio(self.answered_within_target, self.offered - self.short_abandons)

    @property
    def asterisk_sl(self) -> float | None:
        return ratio(self.answered_within_target, self.answered)

    @property
    def asterisk_sl2(self) -> float | None:
        return ratio(
            self.answered_within_target + self.abandoned_within_target,
            self.answered + self.abandoned,
        )

    @property
    def abandonment_rate(self) -> float | None:
        return ratio(self.abandoned - self.short_abandons, self.offered - self.short_abandons)

    @property
    def asa_seconds(self) -> float | None:
        return None if self.answered == 0 else self.answer_seconds / self.answered


@dataclass(frozen=True, slots=True)
class AgentFigures:
    """One agent's period: offers ended in it (as the board's `agent_stats`), their
    part of the calls they answered, their state times and their records."""

    agent_id: str
    name: str
    handled: int = 0  # offers answered
    missed: int = 0  # offers let ring past agent_ring_limit
    answered_ring_1_2: int = 0  # of the handled, answered at the phone's ring 1 or 2
    finished: int = 0  # answered calls whose agent's part is over
    talk_seconds: float = 0.0  # their talk
    wrap_up_seconds: float = 0.0  # time in wrap-up that ended in the period
    wrap_ups: int = 0  # the changes out of wrap-up that ended in the period
    pause_seconds: float = 0.0  # in not-ready
    idle_seconds: float = 0.0  # in ready
    hung_up_first: int = 0  # answered calls the agent hung up, not the caller
    records_missing: int = 0  # answered calls with no record of the agent's
    satisfaction_asked: int = 0  # the agent's records in the period that asked
    satisfaction_scored: int = 0  # of those, with a score
    satisfaction_sum: int = 0  # the scores' sum (1-5 each)

    @property
    def aht_seconds(self) -> float | None:
        """Average handle time: (talk + wrap-up) / calls finished (as "My day")."""
        return ratio(self.talk_seconds + self.wrap_up_seconds, self.finished)

    @property
    def talk_mean_seconds(self) -> float | None:
        return ratio(self.talk_seconds, self.finished)

    @property
    def wrap_up_mean_seconds(self) -> float | None:
        return ratio(self.wrap_up_seconds, self.wrap_ups)

    @property
    def satisfaction_mean(self) -> float | None:
        return ratio(self.satisfaction_sum, self.satisfaction_scored)


@dataclass(frozen=True, slots=True)
class ComplaintFigures:
    """The complaints and suggestions received in the period (SOP 004 §3.7.7), as
    `records.complaints.monthly` counts them."""

    received: int
    by_class: dict[str, int]
    by_status: dict[str, int]
    closed: int
    closed_in_time: int
    overdue: int
    suggestions: int
    suggestions_answered: int
    suggestions_adopted: int

    @property
    def timeliness_rate(self) -> float | None:
        return ratio(self.closed_in_time, self.closed)

    @property
    def adoption_rate(self) -> float | None:
        return ratio(self.suggestions_adopted, self.suggestions_answered)


@dataclass(frozen=True, slots=True)
class CallbackFigures:
    """Abandoned callers called back (docs/callbacks.md), as `records.callbacks.monthly`."""

    abandoned: int
    reached_same_day: int
    reached: int
    expired: int
    attempts: dict[str, int]

    @property
    def same_day_rate(self) -> float | None:
        return ratio(self.reached_same_day, self.abandoned)


@dataclass(frozen=True, slots=True)
class CategoryFigures:
    """The records of one category (inquiry, complaint, suggestion, repair, other)
    in the period and in the one before."""

    category: str
    count: int
    previous: int

    @property
    def change(self) -> float | None:
        """Month-on-month (period-on-period) change: (count − previous) / previous."""
        return ratio(self.count - self.previous, self.previous)


@dataclass(frozen=True, slots=True)
class Report:
    period: Period
    generated_at: datetime  # aware
    centre: QueueFigures  # queue ""
    queues: list[QueueFigures]  # by name
    by_day: list[tuple[date, QueueFigures]]  # the centre's, every local day of the period
    by_hour: list[tuple[int, QueueFigures]]  # the centre's, hours 0-23 of the local day
    rings: list[int]  # answered calls by ring of the answer: 1 … 6, then 7+ (RING_BUCKETS)
    agents: list[AgentFigures]  # by id
    complaints: ComplaintFigures
    callbacks: CallbackFigures
    categories: list[CategoryFigures]  # inquiry, complaint, suggestion, repair, other
    notes: list[str] = field(default_factory=list)  # e.g. "the period is not over yet"
    # The agents' records by category on each local day of the period (every day,
    # every category, zeros included), as `categories` counts them: the trend.
    categories_by_day: list[tuple[date, dict[str, int]]] = field(default_factory=list)
    # Each queue of `queues` on every local day of the period, and in hours 0-23 of the
    # local day: a queue's `by_day` and `by_hour`.
    queue_days: list[tuple[str, date, QueueFigures]] = field(default_factory=list)
    queue_hours: list[tuple[str, int, QueueFigures]] = field(default_factory=list)

    # The centre's satisfaction: the sums of the agents' (one definition with theirs).
    @property
    def satisfaction_asked(self) -> int:
        return sum(a.satisfaction_asked for a in self.agents)

    @property
    def satisfaction_scored(self) -> int:
        return sum(a.satisfaction_scored for a in self.agents)

    @property
    def satisfaction_sum(self) -> int:
        return sum(a.satisfaction_sum for a in self.agents)

    @property
    def satisfaction_mean(self) -> float | None:
        return ratio(self.satisfaction_sum, self.satisfaction_scored)
