"""The link to the floor process (decision 0004): every bus event across and
back, split anywhere; malformed bytes refused; requests answered in either order."""

from __future__ import annotations

import asyncio
import socket
import types
import typing
from typing import Any, Union

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.events import field_names
from callcenter.link import (
    Channel,
    EventReceived,
    Link,
    LinkError,
    RemoteError,
    Reply,
    Request,
    bus_codec,
    bus_events,
)

EVENTS = bus_events()


def _values(hint: Any) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return st.one_of(*(_values(a) for a in typing.get_args(hint)))
    if hint is type(None):
        return st.none()
    if hint is str:
        return st.text(max_size=12)
    if hint is bool:
        return st.booleans()
    if hint is int:
        return st.integers(-(2**40), 2**40)
    if hint is float:
        return st.floats(allow_nan=False, allow_infinity=False)
    if hint is type:
        # A class compiled with mypyc keeps `str | None` as `type` in its
        # annotations (every such field of the bus's events is one).
        return st.one_of(st.none(), st.text(max_size=12))
    # The bus's events hold plain values (callcenter.events): a field of another
    # type would need the codec (and the floor's half) to know its class.
    raise AssertionError(f"no values for {hint!r}: teach the test (and the codec) this type")


def _event(cls: type) -> st.SearchStrategy[Any]:
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{name: _values(hints[name]) for name in field_names(cls)})


def test_the_link_carries_the_bus_events_of_every_kind() -> None:
    names = {cls.__name__ for cls in EVENTS}
    assert {"CallOffered", "CallAnswered", "AgentStateChanged", "QueueConfigured",
            "RegistrationChanged", "PhoneRegistered"} <= names  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(*(_event(cls) for cls in EVENTS)), min_size=1, max_size=8),
       st.integers(1, 7))  # fmt: skip
def test_events_arrive_equal_and_in_order_however_the_bytes_are_split(
    events: list[object], chunk: int
) -> None:
    sender, receiver = Link(bus_codec()), Link(bus_codec())
    stream = b"".join(sender.event(seq, 1_795_420_800.5 + seq, e) for seq, e in enumerate(events))
    got: list[object] = []
    for at in range(0, len(stream), chunk):
        got += receiver.receive(stream[at : at + chunk])
    assert got == [EventReceived(seq, 1_795_420_800.5 + seq, e) for seq, e in enumerate(events)]
    assert all(type(m.event) is type(e) for m, e in zip(got, events, strict=True))  # type: ignore[attr-defined]


def test_requests_and_replies_round_trip() -> None:
    a, b = Link(bus_codec()), Link(bus_codec())
    data = a.request(7, "command", {"agent_id": "a1", "kind": "ready"})
    data += a.reply(7, False, {"error": "invalid transition", "state": "on-call"})
    assert b.receive(data) == [
        Request(7, "command", {"agent_id": "a1", "kind": "ready"}),
        Reply(7, False, {"error": "invalid transition", "state": "on-call"}),
    ]


def test_integers_beyond_64_bits_cross_too() -> None:
    # An administrator may type any number; the ACD answers whether it fits.
    huge = {"max_length": 10**30, "max_wait": -(2**70), "small": 5}
    a, b = Link(bus_codec()), Link(bus_codec())
    assert b.receive(a.request(1, "administer", huge)) == [Request(1, "administer", huge)]
    bad = msgpack.packb(["Q", 1, "x", msgpack.ExtType(1, b"12x")])
    with pytest.raises(LinkError, match="bad integer"):
        b.receive(bad)


@pytest.mark.parametrize(
    ("message", "problem"),
    [
        (["E", 1, 2.0, "os.system", ["rm -rf /"]], "unknown event"),
        (["E", 1, 2.0, "CallQueued", ["c1"]], "values expected"),
        (
            ["E", 1, 2.0, "PhoneRegistered", ["1001", "sip:x", ["h", "p", "UDP"], 60]],
            "PhoneRegistered",
        ),
        (["X", 1], "unknown message"),
        (["A", "one"], "unknown message"),
        ({"E": 1}, "non-empty array"),
        ([], "non-empty array"),
        (17, "non-empty array"),
    ],
)
def test_a_message_that_is_not_of_this_link_is_refused_by_name(message: Any, problem: str) -> None:
    link = Link(bus_codec())
    with pytest.raises(LinkError, match=problem):
        link.receive(msgpack.packb(message))


def test_a_value_of_an_unknown_extension_is_refused() -> None:
    message = ["E", 1, 2.0, "PhoneRegistered", ["1001", "sip:x", msgpack.ExtType(9, b"\x90"), 60]]
    with pytest.raises(LinkError, match="extension type 9"):
        Link(bus_codec()).receive(msgpack.packb(message))


def test_bytes_that_are_not_messagepack_are_refused() -> None:
    with pytest.raises(LinkError, match="malformed"):
        Link(bus_codec()).receive(b"\xc1\xc1\xc1")  # 0xc1 is never used


def test_an_event_without_a_codec_is_not_sent() -> None:
    class Stray:
        pass

    with pytest.raises(LinkError, match="no codec"):
        Link(bus_codec()).event(1, 0.0, Stray())


async def test_a_channel_carries_events_requests_and_refusals_over_a_socketpair() -> None:
    from callcenter.acd.events import CallQueued, RingTicked

    got: list[EventReceived] = []

    async def later(value: int) -> int:
        await asyncio.sleep(0.01)
        return value * 2

    def answer(kind: str, payload: Any) -> Any:
        if kind == "echo":
            return payload
        if kind == "later":  # answered when ready, the link free meanwhile
            return later(payload)
        raise KeyError(kind)

    a, b = socket.socketpair()
    left = Channel(Link(bus_codec()), *await asyncio.open_connection(sock=a),
                   on_request=answer)  # fmt: skip
    right = Channel(Link(bus_codec()), *await asyncio.open_connection(sock=b), on_event=got.append)
    tasks = [asyncio.create_task(left.run()), asyncio.create_task(right.run())]
    events = [CallQueued("c1", "service", "13800000000", 1), RingTicked("c1", 2, "a1", "l1")]
    for seq, event in enumerate(events, 1):
        left.send(left.link.event(seq, 1_795_420_800.0 + seq, event))
    assert await right.request("echo", {"big": "x" * 300_000}) == {"big": "x" * 300_000}
    slow = asyncio.create_task(right.request("later", 21))
    assert await right.request("echo", 1) == 1  # not held up by the slow answer
    assert await slow == 42
    assert [(e.seq, e.event) for e in got] == list(enumerate(events, 1))
    assert left.buffered() == 0  # the other side took everything
    with pytest.raises(RemoteError) as refused:
        await right.request("what", None)
    assert refused.value.kind == "KeyError"
    with pytest.raises(RemoteError, match="no requests"):  # this side serves none
        await left.request("echo", 1)

    # Bytes that are not the link's close it; a request in flight fails at once.
    pending = asyncio.create_task(right.request("echo", 1, timeout=5.0))
    await asyncio.sleep(0)
    right._writer.write(b"\xc1" * 4)  # never valid MessagePack
    with pytest.raises(ConnectionError):
        await pending  # left closed the link on reading garbage
    await asyncio.gather(*tasks)
    assert left.closed and right.closed
    with pytest.raises(ConnectionError):
        left.send(b"")
