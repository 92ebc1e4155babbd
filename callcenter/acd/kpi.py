"""The service level figures' one definition: a fold from the ACD's events to per-queue deltas.

Theory of operation
-------------------
Offered, answered, answered within the ring target, abandoned (short
abandons among them) and the answer time behind ASA are counted in one place:
`KpiFold.observe` turns each event into the change it makes to one queue's
counts (a `KpiDelta`), or into none. The Prometheus counters
(`metrics.calls.CallMetrics`) and the supervisor board (`agent.board.FloorTally`)
both add up these deltas, and the records' SQL (`records.stats.queue_stats`)
counts the same way over the calls table; a property test drives the ACD
with random traffic and checks that the three agree (tests/records/test_kpi.py).

The rules, those of the records (docs/metrics.md):

* a call counts in the queue it was **first** queued in, however it
  overflows: moved on to another queue (`CallOverflowed`, kind "queue"),
  its answer or abandon there still counts in its first queue;
* a call is offered once, when first queued (a second `CallQueued` of the
  same call, which the ACD does not publish today, would not count again);
* the first answer is the sample (answered, within the target or not, its
  answer time); an answer after a transfer is not;
* an abandon counts unless the caller left while waiting after a transfer
  (the call was answered already); a short abandon (quicker than the
  queue's ``short_abandon``) is an abandon too, and is taken out of the
  service level's and the abandonment rate's base; an abandon is within the
  target (for Asterisk's SL2) when the ring target had not passed: no
  `TargetBreached` for the call before it, as the records' ``breached`` says;
* a call overflowed to a number or rejected counts as offered and nothing
  else, and so does a call that failed (`CallFailed`: the PBX's ring timer
  cancelled it, another phone of the PBX answered it, or the PBX refused
  every offer of it): not answered, and not abandoned either (a caller waiting when the queue
  closes or empties included);
* a call turned away at arrival, its queue closed or nobody there
  (`CallClosed`), was never queued: not offered, outside the service level;
* whether an answer was within the target, or an abandon short, is the
  ACD's word in the event, measured against the queue the call was in at
  that moment (after an overflow, the second queue's target and
  ``short_abandon``), as the records store it.

The fold remembers each call's first queue while the call is in progress,
at most `limit` calls (events lost elsewhere must not make it grow without
bound: the oldest are forgotten, and a later event of theirs counts in the
queue it names).
"""

from __future__ import annotations

from dataclasses import dataclass

from .events import (
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallFailed,
    CallOverflowed,
    CallQueued,
    CallRejected,
    TargetBreached,
)

__all__ = ["KpiDelta", "KpiFold"]


@dataclass(frozen=True, slots=True)
class KpiDelta:
    """What one event adds to one queue's counts."""

    queue: str
    offered: int = 0
    answered: int = 0
    answered_within_target: int = 0
    abandoned: int = 0  # short abandons included
    short_abandons: int = 0
    abandoned_within_target: int = 0  # abandons before the ring target passed (SL2)
    answer_seconds: float = 0.0  # the answer time of an answered call (ASA = sum / answered)


class KpiFold:
    """Events in, `KpiDelta`s out (see the module docstring)."""

    def __init__(self, limit: int = 100_000) -> None:
        self.limit = limit
        self._first: dict[str, str] = {}  # call id -> the queue it was first queued in
        self._breached: set[str] = set()  # calls in progress whose ring target passed

    def observe(self, event: object) -> KpiDelta | None:
        """The change `event` makes to a queue's counts, if any."""
        match event:
            case CallQueued(call_id=call_id, queue=queue):
                if call_id in self._first:  # queued again after an overflow: offered once
                    return None
                if len(self._first) >= self.limit:
                    oldest = next(iter(self._first))
                    del self._first[oldest]
                    self._breached.discard(oldest)
                self._first[call_id] = queue
                return KpiDelta(queue, offered=1)
            case CallAnswered() if not event.transferred:
                return KpiDelta(
                    self._first.get(event.call_id, event.queue),
                    answered=1,
                    answered_within_target=1 if event.within_target else 0,
                    answer_seconds=event.answer_seconds,
                )
            case TargetBreached(call_id=call_id) if call_id in self._first:
                self._breached.add(call_id)
            case CallAbandoned():
                queue = self._first.pop(event.call_id, event.queue)
                breached = event.call_id in self._breached
                self._breached.discard(event.call_id)
                if event.transferred:
                    return None
                return KpiDelta(
                    queue,
                    abandoned=1,
                    short_abandons=1 if event.short else 0,
                    abandoned_within_target=0 if breached else 1,
                )
            case (
                CallEnded(call_id=call_id)
                | CallRejected(call_id=call_id)
                | CallFailed(call_id=call_id)
            ):
                self._first.pop(call_id, None)
                self._breached.discard(call_id)
            case CallOverflowed(call_id=call_id, kind=kind) if kind != "queue":
                self._first.pop(call_id, None)
                self._breached.discard(call_id)
        return None
