"""Through the pure core: what the PBX says when it refuses an agent leg or
cancels the caller, and who the agent legs say they are from (issue 19, items
1 and 10)."""

from __future__ import annotations

import pytest

from callcenter.acd.events import CallAbandoned, CallFailed, OfferEnded
from callcenter.calls.bridge import BridgeConfig, cancel_reason
from callcenter.sip.parser import parse_message
from tests.calls.test_switchboard import (
    CALLER,
    ME,
    PHONES,
    Harness,
    answer,
    caller_invite,
)
from tests.sip.helpers import request


@pytest.mark.parametrize(
    ("reasons", "expected"),
    [
        ([], "caller"),
        (['Q.850;cause=16;text="Normal call clearing"'], "caller"),
        (['Q.850;cause=19;text="No answer, user alerted"'], "pbx-timeout"),  # Asterisk's Dial
        (["q.850 ; cause=18"], "pbx-timeout"),
        (["Q.850;cause=102"], "pbx-timeout"),
        (['SIP;cause=408;text="Request Timeout"'], "pbx-timeout"),
        (["SIP;cause=480"], "pbx-timeout"),
        (['SIP;cause=200;text="Call completed elsewhere"'], "elsewhere"),
        (["SIP;cause=487, Q.850;cause=19"], "pbx-timeout"),  # a list in one header
        (["Q.850;cause=nineteen", "Q.850;cause=99999999999999999999"], "caller"),
        (["garbage;;;=", ";cause=19"], "caller"),
        # Found in review: an unclosed quote raised, and the step's actions were lost
        # (no 200 to the CANCEL, the call kept waiting in the ACD).
        (['Q.850;cause=16;text="a, b'], "caller"),
    ],
)
def test_the_cancels_reason_header_says_who_ended_the_call(
    reasons: list[str], expected: str
) -> None:
    extra = "".join(f"Reason: {r}\r\n" for r in reasons)
    cancel = parse_message(request("CANCEL", uri="sip:4000@127.0.0.1", extra=extra))
    assert cancel_reason(cancel) == expected  # type: ignore[arg-type]


def test_a_pbx_timer_cancel_is_a_failed_call_not_an_abandon() -> None:
    h = Harness()  # no agent: the caller waits until the PBX's Dial timeout
    h.send(caller_invite(), CALLER)
    h.send(
        request("CANCEL", uri="sip:4000@127.0.0.1", extra="Reason: Q.850;cause=19\r\n"),
        CALLER,
        at=30.0,
    )
    assert sorted(m.status for m in h.to(CALLER) if m.status >= 200) == [200, 487]
    assert h.of(CallAbandoned) == []
    [failed] = h.of(CallFailed)
    assert (failed.reason, failed.rings, failed.wait_seconds) == ("pbx-timeout", 7, 30.0)


@pytest.mark.parametrize(
    ("status", "outcome", "state"),
    [
        (403, "refused", "not-ready"),
        (404, "unreachable", "not-ready"),  # a proxy's: the phone is not registered
        (500, "refused", "not-ready"),
        (502, "unreachable", "not-ready"),
        (504, "unreachable", "not-ready"),
        (401, "refused", "not-ready"),  # no credentials to answer it with
        (503, "unreachable", "not-ready"),
        (480, "unreachable", "not-ready"),
        (488, "error", "ready"),
    ],
)
def test_a_failed_agent_leg_is_classified_by_its_status(
    status: int, outcome: str, state: str
) -> None:
    h = Harness("1001")
    h.send(caller_invite(), CALLER)
    [invite] = h.to(PHONES["1001"])
    h.send(answer(invite, status), PHONES["1001"], at=0.1)
    [ended] = h.of(OfferEnded)
    assert (ended.outcome, ended.status) == (outcome, status)
    assert h.sb.acd.agents["a1001"].state.value == state


def test_every_offer_refused_then_the_caller_hangs_up_is_a_failed_call() -> None:
    h = Harness("1001", "1002")
    h.send(caller_invite(), CALLER)
    for _ in range(2):
        dest, invite = next((d, m) for d, m in h.wire if getattr(m, "method", "") == "INVITE")
        h.wire.clear()
        h.send(answer(invite, 403), dest, at=h.now + 0.1)
    h.send(request("CANCEL", uri="sip:4000@127.0.0.1"), CALLER, at=20.0)
    assert h.of(CallAbandoned) == []
    [failed] = h.of(CallFailed)
    assert (failed.reason, failed.refused) == ("refused", 2)
    assert [o.outcome for o in h.of(OfferEnded)] == ["refused", "refused"]


def test_agent_legs_through_the_pbx_are_from_the_hotline_with_the_caller_shown() -> None:
    """A PBX that identifies endpoints by From (Asterisk's identify_by=username,
    Kamailio's auth_check) refused legs from the caller's number with the
    hotline's credentials; from the hotline's account, they are the hotline's."""
    h = Harness("1001")
    h.sb.bridge.config = BridgeConfig(*ME, leg_from="sip:4000@pbx.example")
    h.send(caller_invite(extra='P-Asserted-Identity: "Li Lei" <sip:13800000001@pbx>\r\n'), CALLER)
    [invite] = h.to(PHONES["1001"])
    assert invite.from_.uri.user == "4000" and invite.from_.uri.host == "pbx.example"
    assert invite.from_.display_name == "Li Lei"
    pai = invite.headers.get("P-Asserted-Identity") or ""
    assert "13800000001" in pai and "Li Lei" in pai


def test_without_a_name_the_callers_number_is_the_display_name() -> None:
    h = Harness("1001")
    h.sb.bridge.config = BridgeConfig(*ME, leg_from="sip:4000@pbx.example")
    nameless = caller_invite().replace(b'"Caller" <', b"<")
    h.send(nameless, CALLER)
    [invite] = h.to(PHONES["1001"])
    assert invite.from_.display_name == "13812345678"
    assert invite.from_.uri.user == "4000"


def test_a_phone_registered_here_sees_the_caller_in_from_by_default() -> None:
    h = Harness("1001")
    h.send(caller_invite(extra="P-Asserted-Identity: <sip:13800000001@pbx>\r\n"), CALLER)
    [invite] = h.to(PHONES["1001"])
    assert invite.from_.uri.user == "13800000001"


def test_the_agent_leg_says_the_phone_may_transfer_it() -> None:
    """A phone shows its transfer key only for a dialog whose peer allows REFER
    (RFC 3515): the agent leg's INVITE lists it; the caller's answer does not (a
    REFER from the caller is refused)."""
    h = Harness("1001")
    h.send(caller_invite(), CALLER)
    [invite] = h.to(PHONES["1001"])
    assert "REFER" in (invite.headers.get("Allow") or "").split(", ")


def test_an_unreadable_reason_on_the_cancel_still_ends_the_call() -> None:
    h = Harness("1001")
    h.send(caller_invite(), CALLER)
    [invite] = h.to(PHONES["1001"])
    cancel = request("CANCEL", uri="sip:4000@127.0.0.1", extra='Reason: Q.850;text="a, b\r\n')
    h.send(cancel, CALLER, at=2.0)
    assert sorted(m.status for m in h.to(CALLER) if m.status >= 200) == [200, 487]
    [abandoned] = h.of(CallAbandoned)
    assert abandoned.where == "ringing"
    [ended] = h.of(OfferEnded)
    assert ended.outcome == "cancelled" and invite.method == "INVITE"


def test_a_reason_is_not_read_when_it_is_not_trusted() -> None:
    """Behind a proxy that passes on the caller's side's Reason, a caller could
    have their hang-up counted as the PBX's timer: acd.trust_cancel_reason off."""
    h = Harness()
    h.sb.bridge.config = BridgeConfig(*ME, trust_cancel_reason=False)
    h.send(caller_invite(), CALLER)
    h.send(request("CANCEL", uri="sip:4000@127.0.0.1", extra="Reason: SIP;cause=200\r\n"), CALLER, at=9.0)
    assert h.of(CallFailed) == []
    assert len(h.of(CallAbandoned)) == 1
