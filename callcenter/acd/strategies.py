"""Agent selection strategies: pure functions ordering the candidates."""

from __future__ import annotations

from collections.abc import Sequence

from .agents import Agent
from .queues import Strategy

__all__ = ["order_candidates"]


def order_candidates(
    strategy: Strategy, candidates: Sequence[Agent], group: str, last_offered: str | None
) -> list[Agent]:
    """Candidates in the order they should be offered the call.

    Ties are broken by agent id so the order is deterministic. Round-robin
    continues after `last_offered`, the agent this queue offered a call to last.
    """
    match strategy:
        case Strategy.LONGEST_IDLE | Strategy.RING_ALL:
            return sorted(candidates, key=lambda a: (a.idle_since, a.id))
        case Strategy.FEWEST_CALLS:
            return sorted(candidates, key=lambda a: (a.calls_handled, a.idle_since, a.id))
        case Strategy.SKILL:
            return sorted(candidates, key=lambda a: (-(a.level(group) or 0), a.idle_since, a.id))
        case Strategy.ROUND_ROBIN:
            ordered = sorted(candidates, key=lambda a: a.id)
            if last_offered is None:
                return ordered
            after = [a for a in ordered if a.id > last_offered]
            return after + [a for a in ordered if a.id <= last_offered]
