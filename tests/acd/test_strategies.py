"""Agent selection: the best candidate is the head of the full order, for every strategy."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from callcenter.acd.agents import Agent
from callcenter.acd.queues import Strategy
from callcenter.acd.strategies import best_candidate, order_candidates

agents = st.lists(
    st.builds(
        lambda i, idle, handled, level: _agent(i, idle, handled, level),
        st.integers(0, 30),
        st.sampled_from([0.0, 1.0, 2.5, 7.0]),  # ties on purpose
        st.integers(0, 3),
        st.one_of(st.none(), st.integers(1, 3)),
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda a: a.id,
)


def _agent(i: int, idle: float, handled: int, level: int | None) -> Agent:
    a = Agent(f"a{i:02d}", f"A{i}", f"{i:03d}", f"1{i:03d}", {} if level is None else {"cs": level})
    a.idle_since, a.calls_handled = idle, handled
    return a


@given(
    agents, st.sampled_from(list(Strategy)), st.one_of(st.none(), st.sampled_from(["a05", "a20"]))
)
def test_best_candidate_is_the_first_in_order(
    candidates: list[Agent], strategy: Strategy, last: str | None
) -> None:
    ordered = order_candidates(strategy, candidates, "cs", last)
    assert sorted(a.id for a in ordered) == sorted(a.id for a in candidates)
    assert best_candidate(strategy, candidates, "cs", last) is ordered[0]


def test_longest_idle_ties_go_to_the_lower_id() -> None:
    a, b = _agent(2, 1.0, 0, 1), _agent(1, 1.0, 0, 1)
    assert best_candidate(Strategy.LONGEST_IDLE, [a, b], "cs", None) is b
