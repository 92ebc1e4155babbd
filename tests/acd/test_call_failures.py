"""Calls the caller did not give up on, and offers the PBX refused (issue 19, items 1, 5, 10).

Found with a stock Asterisk: every agent leg was refused (the PBX matched the
leg's From to another endpoint and refused the hotline's credentials); the
agent stayed ready and was offered the call again every 10 s, and the caller,
who rang for 30 s into nothing, was recorded as abandoning. The PBX's own ring
timer cancelling a long wait was recorded as the caller abandoning too.
"""

from __future__ import annotations

from callcenter.acd.agents import AgentState
from callcenter.acd.events import (
    CallAbandoned,
    CallArrived,
    CallerHungUp,
    CallFailed,
    LegFailed,
    LegFailure,
    LegRinging,
    OfferEnded,
)
from tests.acd.test_engine import Floor


def test_a_refused_offer_sets_the_agent_not_ready_and_moves_the_call_on() -> None:
    f = Floor("a1", "a2")
    f.do(CallArrived("c1", "4000", "13800000001"))
    [first] = f.ring()
    f.do(LegFailed("c1", first.leg_id, LegFailure.REFUSED, 403), at=0.2)
    [ended] = f.of(OfferEnded)
    assert (ended.outcome, ended.status, ended.leg_rings) == ("refused", 403, 0)
    assert f.state(first.agent_id) is AgentState.NOT_READY
    assert f.acd.agents[first.agent_id].reason == "phone-refused"
    # The next agent at once; the refused one is never offered it again.
    f.until(60.0)
    assert [r.agent_id for r in f.ring()][:2] == [
        first.agent_id,
        "a2" if first.agent_id == "a1" else "a1",
    ]
    assert [r.agent_id for r in f.ring()].count(first.agent_id) == 1


def test_a_caller_who_gives_up_after_only_refused_offers_is_a_failed_call_not_an_abandon() -> None:
    f = Floor("a1", "a2")
    f.do(CallArrived("c1", "4000", "13800000001"))
    for _ in range(2):
        leg = f.ring()[-1]
        f.do(LegFailed("c1", leg.leg_id, LegFailure.REFUSED, 401), at=f.now + 0.1)
    f.do(CallerHungUp("c1"), at=30.0)
    assert f.of(CallAbandoned) == []
    [failed] = f.of(CallFailed)
    assert (failed.reason, failed.refused, failed.where, failed.rings) == (
        "refused",
        2,
        "queued",
        7,
    )
    assert failed.wait_seconds == 30.0


def test_a_caller_who_gives_up_after_a_phone_rang_abandoned_even_if_another_refused() -> None:
    f = Floor("a1", "a2")
    f.do(CallArrived("c1", "4000", "1"))
    first = f.ring()[-1]
    f.do(LegFailed("c1", first.leg_id, LegFailure.REFUSED, 403), at=0.1)
    second = f.ring()[-1]
    f.do(LegRinging("c1", second.leg_id), at=0.3)
    f.do(CallerHungUp("c1"), at=4.0)
    assert f.of(CallFailed) == []
    [abandoned] = f.of(CallAbandoned)
    assert abandoned.where == "ringing"


def test_the_pbx_ring_timer_ends_a_call_as_failed() -> None:
    f = Floor()  # nobody there: the caller waits until the PBX gives up
    f.do(CallArrived("c1", "4000", "1"))
    f.do(CallerHungUp("c1", "pbx-timeout"), at=30.0)
    assert f.of(CallAbandoned) == []
    [failed] = f.of(CallFailed)
    assert (failed.reason, failed.rings, failed.where) == ("pbx-timeout", 7, "queued")


def test_a_call_answered_elsewhere_in_the_pbx_is_failed_and_its_leg_cancelled() -> None:
    f = Floor("a1")
    f.do(CallArrived("c1", "4000", "1"))
    [leg] = f.ring()
    f.do(LegRinging("c1", leg.leg_id), at=0.0)
    f.do(CallerHungUp("c1", "elsewhere"), at=3.0)
    [failed] = f.of(CallFailed)
    assert (failed.reason, failed.where) == ("elsewhere", "ringing")
    [ended] = f.of(OfferEnded)
    assert ended.outcome == "cancelled"
    assert f.state("a1") is AgentState.READY


def test_a_cancelled_leg_counts_its_rings_as_the_caller_does() -> None:
    """Both clocks started together: the caller hangs up 7 s in, during ring 2 of
    both; the leg used to be stored with 1 (the rings it had finished)."""
    f = Floor("a1")
    f.do(CallArrived("c1", "4000", "1"))
    [leg] = f.ring()
    f.do(LegRinging("c1", leg.leg_id), at=0.0)
    f.do(CallerHungUp("c1"), at=7.0)
    [abandoned] = f.of(CallAbandoned)
    [ended] = f.of(OfferEnded)
    assert abandoned.rings == ended.leg_rings == 2


def test_a_leg_that_rang_out_counts_the_agent_ring_limit() -> None:
    """Ring-no-answer ends the leg as ring limit + 1 starts: that ring is not counted."""
    f = Floor("a1", "a2", agent_ring_limit=2)
    f.do(CallArrived("c1", "4000", "1"))
    [leg] = f.ring()
    f.do(LegRinging("c1", leg.leg_id), at=0.0)
    f.until(10.0)
    [missed] = f.of(OfferEnded)
    assert (missed.outcome, missed.leg_rings) == ("missed", 2)
