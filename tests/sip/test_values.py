"""The SIP core's small values written out instead of dataclasses (so that mypyc
compiles them): they still compare, hash, print and match like the dataclasses
they replaced, in both the pure and the compiled pass of scripts/test."""

from __future__ import annotations

import os

import pytest

from callcenter.events import event_fields
from callcenter.sip.dialog import DialogId
from callcenter.sip.events import RequestReceived, ResponseReceived, Send, TxKey
from callcenter.sip.headers import CSeq
from callcenter.sip.message import Address, Headers, Request, Response, Transport
from callcenter.sip.transaction import PassUp

ADDR = Address("127.0.0.1", 5060)
COMPILED = bool(os.environ.get("CALLCENTER_TEST_COMPILED"))

# One value of each class, and another that differs in the last field only.
PAIRS: list[tuple[object, object]] = [
    (TxKey("z9hG4bK1", "INVITE", True, "h:5060"), TxKey("z9hG4bK1", "INVITE", True, "h:5061")),
    (DialogId("c1", "l", "r"), DialogId("c1", "l", "r2")),
    (CSeq(1, "INVITE"), CSeq(1, "BYE")),
    (ADDR, Address("127.0.0.1", 5060, Transport.TCP)),
    (Send(b"x", ADDR), Send(b"x", Address("127.0.0.1", 5061))),
]


def _copy(value: object) -> object:
    fields = event_fields(value)
    return type(value)(*fields.values())


@pytest.mark.parametrize(("value", "other"), PAIRS, ids=lambda v: type(v).__name__)
def test_equal_values_are_equal_and_hash_alike(value: object, other: object) -> None:
    same = _copy(value)
    assert same is not value
    assert same == value
    assert (same != value) is False
    assert hash(same) == hash(value)
    assert {value: 1}[same] == 1
    assert value != other and other not in {value}
    assert value != "something else"
    assert repr(value).startswith(f"{type(value).__name__}(")
    if COMPILED:  # Final attributes are read-only in compiled classes
        name = type(value).__match_args__[0]  # type: ignore[attr-defined]
        with pytest.raises(AttributeError):
            setattr(value, name, getattr(other, name))


@pytest.mark.parametrize(("value", "other"), PAIRS, ids=lambda v: type(v).__name__)
def test_fields_are_named_in_order_for_patterns_and_the_bus(value: object, other: object) -> None:
    names = type(value).__match_args__  # type: ignore[attr-defined]
    assert isinstance(names, tuple) and names
    assert list(event_fields(value)) == list(names)


def test_class_patterns_match_from_interpreted_code() -> None:
    # The runtime (interpreted) matches on these; compiled classes must expose
    # `__match_args__` as a class-level tuple for that.
    match Send(b"data", ADDR):
        case Send(data, dest):
            assert (data, dest) == (b"data", ADDR)
        case _:
            pytest.fail("Send did not match")
    match TxKey("b", "BYE", False):
        case TxKey(branch, method, True):
            pytest.fail("a client key matched server=True")
        case TxKey(branch, method, False, sent_by):
            assert (branch, method, sent_by) == ("b", "BYE", "")
    req = Request(method="BYE", uri="sip:a@b")
    match RequestReceived(None, req, ADDR), ResponseReceived(None, Response(), ADDR):
        case RequestReceived(None, r, source), ResponseReceived(None, resp, _):
            assert r is req and source == ADDR and resp.status == 200
        case _:
            pytest.fail("events did not match")
    match PassUp(req):
        case PassUp(message):
            assert message is req


def test_messages_compare_by_type_and_every_field() -> None:
    def invite(**kw: object) -> Request:
        h = Headers([("Call-ID", "c1")])
        return Request(h, **kw)  # type: ignore[arg-type]

    assert invite(method="INVITE") == invite(method="INVITE")
    assert invite(method="INVITE") != invite(method="INVITE", body=b"v=0")
    assert invite(method="INVITE") != invite(method="INVITE", uri="sip:x@y")
    assert Request(Headers([("Call-ID", "c1")])) != Request(Headers([("Call-ID", "c2")]))
    assert Response(status=200) != Response(status=486)
    assert Response() != Request()  # same fields' defaults, not the same kind of message
    assert Request().headers is not Request().headers  # each gets its own
