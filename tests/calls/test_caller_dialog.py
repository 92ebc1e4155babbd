"""The caller's dialog after the answer: requests to the caller go to the caller.

Found by tests/interop/test_acd.py (agent hangs up first, through Kamailio):
the bridge let its own 200 "confirm" the caller's dialog, which took the 200's
Contact (the service's own) as the remote target, so the BYE to the caller
was addressed to the service itself and looped back through the PBX (481).
"""

from __future__ import annotations

from callcenter.sip.message import Request
from tests.calls.test_switchboard import ANSWER, CALLER, OFFER, PHONES, Harness, answer
from tests.sip.helpers import request

PBX_ROUTE = "<sip:127.0.0.1:5090;lr;ftag=from-1>"


def _connected_through_a_pbx() -> tuple[Harness, Request, Request]:
    """A call whose INVITE a proxy record-routed, answered by agent 1001."""
    h = Harness("1001")
    invite = request(
        uri="sip:4000@127.0.0.1",
        extra=f"Record-Route: {PBX_ROUTE}\r\nContent-Type: application/sdp\r\n",
        body=OFFER,
    )
    h.send(invite, CALLER)
    ringing = h.to(CALLER)[1]
    [agent_invite] = h.to(PHONES["1001"])
    h.send(answer(agent_invite, 200, ANSWER), PHONES["1001"], at=1.0)
    h.to(PHONES["1001"])
    [ok] = h.to(CALLER)
    assert ok.status == 200
    return h, ringing, agent_invite


def test_bye_to_the_caller_goes_to_the_callers_contact_along_the_route_set() -> None:
    h, ringing, agent_invite = _connected_through_a_pbx()
    bye = Request(method="BYE", uri="sip:hotline@127.0.0.1:5060")
    bye.headers.add("Via", "SIP/2.0/UDP 127.0.0.1:6001;branch=z9hG4bK-pbye")
    bye.headers.add("From", "<sip:1001@127.0.0.1>;tag=ph")
    bye.headers.add("To", f"{agent_invite.headers.get('From')}")
    bye.headers.add("Call-ID", agent_invite.call_id)
    bye.headers.add("CSeq", "7 BYE")
    h.send(bye, PHONES["1001"], at=5.0)

    [caller_bye] = [m for m in h.to(CALLER) if isinstance(m, Request)]
    assert caller_bye.method == "BYE"
    # The caller's Contact from its INVITE, not the service's own Contact.
    assert caller_bye.uri == "sip:13812345678@127.0.0.1:5070"
    assert caller_bye.headers.get_all("Route") == [PBX_ROUTE]
    assert caller_bye.from_.tag == ringing.to.tag and caller_bye.to.tag == "from-1"
