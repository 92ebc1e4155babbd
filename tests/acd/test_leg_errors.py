"""An agent leg that fails with an unclassified error must not be retried at once.

Found by tests/interop/test_acd.py: a PBX that kept answering the agent leg
407 (credentials it would not accept) got the same INVITE to the same agent
again within milliseconds, about a hundred times a second, for as long as the
caller waited: `LegFailure.ERROR` released the agent READY with no cool-down,
and with every agent tried the dispatcher starts again at once. (A refusal
such as that 407 is `LegFailure.REFUSED` now, which sets the agent not ready:
tests/acd/test_call_failures.py; an unclassified error still cools down.)
"""

from __future__ import annotations

from callcenter.acd.agents import AgentState
from callcenter.acd.events import CallArrived, LegFailed, LegFailure, OfferEnded
from tests.acd.test_engine import Floor


def test_an_agent_whose_leg_failed_with_an_error_cools_down_like_busy() -> None:
    f = Floor("a1", busy_cooldown=10.0)
    f.do(CallArrived("c1", "4000", "1"))
    [first] = f.ring()
    f.do(LegFailed("c1", first.leg_id, LegFailure.ERROR, 415), at=0.5)
    assert [o.outcome for o in f.of(OfferEnded)] == ["error"]
    assert f.state("a1") is AgentState.READY  # not a miss, not unreachable
    # No second offer while the agent cools down ...
    f.until(10.4)
    assert len(f.ring()) == 1
    # ... then the waiting call is offered again.
    f.until(10.5)
    assert [r.agent_id for r in f.ring()] == ["a1", "a1"]


def test_an_error_on_one_agent_moves_the_call_to_the_next_at_once() -> None:
    f = Floor("a1", "a2", busy_cooldown=10.0)
    f.do(CallArrived("c1", "4000", "1"))
    [first] = f.ring()
    f.do(LegFailed("c1", first.leg_id, LegFailure.ERROR, 488), at=0.5)
    assert [r.agent_id for r in f.ring()] == [
        first.agent_id,
        "a2" if first.agent_id == "a1" else "a1",
    ]
