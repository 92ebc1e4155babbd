"""The agent leg's transition table, pair by pair (callcenter/calls/bridge.py).

Every (state, input) pair is listed here, apart from the bridge's own table:
the next state and the action, "absorbed" (an input from the phone the table
lacks: nothing happens), or "raises" (an input from our own code the table
lacks). How the bridge acts on each action is covered by test_switchboard.py
and the interop tests, end to end.
"""

from __future__ import annotations

import itertools

import pytest

from callcenter.calls.bridge import (
    AgentTarget,
    _AgentLeg,
    _LegAction,
    _LegInput,
    _LegState,
)
from callcenter.sip.errors import TransactionStateError
from callcenter.sip.events import TxKey
from callcenter.sip.message import Address, Request

S, In, A = _LegState, _LegInput, _LegAction
ABSORBED = "absorbed"
RAISES = "raises"

# Rows: states; columns, in this order: 1xx, 2xx, 300-699, timed out, BYE, given up.
INPUTS = (
    In.RESPONSE_1XX,
    In.RESPONSE_2XX,
    In.RESPONSE_FINAL,
    In.TIMED_OUT,
    In.BYE_RECEIVED,
    In.GIVEN_UP,
)
Outcome = tuple[_LegState, _LegAction] | str
EXPECTED: dict[_LegState, tuple[Outcome, ...]] = {
    S.CALLING: (
        (S.RINGING, A.REPORT_RINGING),
        (S.ANSWERED, A.REPORT_ANSWER),
        (S.ENDED, A.REPORT_FAILURE),
        (S.ENDED, A.REPORT_UNREACHABLE),
        ABSORBED,
        (S.CANCELLING, A.SEND_CANCEL),
    ),
    S.RINGING: (
        (S.RINGING, A.NOTHING),
        (S.ANSWERED, A.REPORT_ANSWER),
        (S.ENDED, A.REPORT_FAILURE),
        (S.ENDED, A.REPORT_UNREACHABLE),
        ABSORBED,
        (S.CANCELLING, A.SEND_CANCEL),
    ),
    S.CANCELLING: (
        (S.CANCELLING, A.NOTHING),
        (S.ENDED, A.ACK_AND_BYE),  # the late 200
        (S.ENDED, A.REPORT_CANCELLED),
        (S.ENDED, A.REPORT_UNREACHABLE),
        ABSORBED,
        (S.CANCELLING, A.NOTHING),  # one CANCEL is enough
    ),
    S.ANSWERED: (
        ABSORBED,  # the INVITE transaction absorbs a 1xx after the 200 anyway
        (S.ANSWERED, A.RESEND_ACK),  # a retransmitted 200: our ACK was lost
        ABSORBED,
        ABSORBED,
        (S.ENDED, A.FORGET),
        (S.ENDED, A.SEND_BYE),
    ),
    S.ENDED: (ABSORBED, ABSORBED, ABSORBED, ABSORBED, ABSORBED, RAISES),
}
PAIRS = [
    (state, event, EXPECTED[state][INPUTS.index(event)])
    for state, event in itertools.product(_LegState, _LegInput)
]


def leg_in(state: _LegState) -> _AgentLeg:
    leg = _AgentLeg(
        "leg-1",
        "call-1",
        Request(method="INVITE", uri="sip:2001@pbx.example"),
        AgentTarget("sip:2001@pbx.example", Address("192.0.2.10", 5060), "pbx.example"),
        TxKey("z9hG4bK-leg-1", "INVITE", False),
    )
    leg.state = state
    return leg


def test_every_state_and_input_is_listed() -> None:
    assert set(EXPECTED) == set(_LegState)
    assert set(INPUTS) == set(_LegInput)
    assert len(PAIRS) == len(_LegState) * len(_LegInput)


@pytest.mark.parametrize(
    ("state", "event", "expected"), PAIRS, ids=[f"{s.name}-{e.name}" for s, e, _ in PAIRS]
)
def test_leg_transition(state: _LegState, event: _LegInput, expected: Outcome) -> None:
    leg = leg_in(state)
    if expected == RAISES:
        with pytest.raises(TransactionStateError) as raised:
            leg.fire(event)
        assert (raised.value.machine, raised.value.state) == ("agent leg", state.value)
        assert leg.state is state
    elif expected == ABSORBED:
        assert leg.fire(event) is A.NOTHING
        assert leg.state is state
    else:
        assert (leg.fire(event), leg.state) == (expected[1], expected[0])


def test_a_new_leg_is_calling() -> None:
    leg = leg_in(S.CALLING)
    assert _AgentLeg(leg.id, leg.call_id, leg.invite, leg.target, leg.tx).state is S.CALLING
