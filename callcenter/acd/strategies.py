"""Agent selection strategies: pure functions ordering the candidates."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .agents import Agent
from .queues import Strategy

__all__ = ["best_candidate", "order_candidates"]


def order_candidates(
    strategy: Strategy, candidates: Sequence[Agent], group: str, last_offered: str | None
) -> list[Agent]:
    """Candidates in the order they should be offered the call.

    Ties are broken by agent id so the order is deterministic. Round-robin
    continues after `last_offered`, the agent this queue offered a call to last.
    """
    key = _key(strategy, group)
    if key is not None:
        return sorted(candidates, key=key)
    match strategy:
        case Strategy.ROUND_ROBIN:
            ordered = sorted(candidates, key=lambda a: a.id)
            if last_offered is None:
                return ordered
            after = [a for a in ordered if a.id > last_offered]
            return after + [a for a in ordered if a.id <= last_offered]
        case _:
            raise ValueError(f"unknown strategy {strategy!r}")


def best_candidate(
    strategy: Strategy, candidates: Sequence[Agent], group: str, last_offered: str | None
) -> Agent:
    """`order_candidates(...)[0]`, without sorting them all. `candidates` is not empty."""
    if strategy is Strategy.LONGEST_IDLE:
        # The common strategy, over a whole floor per call: compared field by
        # field rather than through a key tuple built for every agent.
        best = candidates[0]
        for agent in candidates:
            if agent.idle_since < best.idle_since or (
                agent.idle_since == best.idle_since and agent.id < best.id
            ):
                best = agent
        return best
    key = _key(strategy, group)
    if key is not None:
        return min(candidates, key=key)
    return order_candidates(strategy, candidates, group, last_offered)[0]


def _key(strategy: Strategy, group: str) -> Callable[[Agent], tuple[Any, ...]] | None:
    """The sort key of the strategies that are a plain ordering (None for round-robin)."""
    match strategy:
        case Strategy.LONGEST_IDLE | Strategy.RING_ALL:
            return lambda a: (a.idle_since, a.id)
        case Strategy.FEWEST_CALLS:
            return lambda a: (a.calls_handled, a.idle_since, a.id)
        case Strategy.SKILL:
            return lambda a: (-(a.level(group) or 0), a.idle_since, a.id)
    return None
