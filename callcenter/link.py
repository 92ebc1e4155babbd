"""The link between the call process and the floor process (decision 0004).

Sans-I/O, like the SIP core: `Link` turns messages into bytes and bytes into
messages, and keeps what the other side has not acknowledged; a thin asyncio
transport (not here yet) moves the bytes over a socketpair.

On the wire each message is one MessagePack array, which delimits itself, so a
stream needs no framing of its own:

- ``["E", seq, wall, name, [values…]]``: an event of the bus, by its class name
  and its dataclass fields in order (`callcenter.bus.field_names`); only
  classes given to the `EventCodec` are rebuilt, so nothing on the wire names
  code to run.
- ``["A", seq]``: every event up to `seq` is taken care of (written or
  journaled by the records writer): the sender may forget them.
- ``["Q", id, kind, payload]`` and ``["R", id, ok, payload]``: a request (an
  agent's command, an administrative change, a snapshot) and its reply.

Events the other side has not acknowledged stay in the sender's `Outbox`, to
be sent again if the floor process is restarted; they are never lost silently:
an outbox at its bound says so, and the caller journals what it cannot keep.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Union

import msgpack

from callcenter.bus import field_names
from callcenter.sip.message import Address, Transport

__all__ = [
    "Acked",
    "EventCodec",
    "EventReceived",
    "Link",
    "LinkError",
    "Outbox",
    "Reply",
    "Request",
    "bus_events",
]

#: Largest message accepted (a snapshot of a large floor is the biggest).
MAX_MESSAGE = 64 * 1024 * 1024


def bus_events() -> tuple[type, ...]:
    """The classes the runtime publishes on the event bus: what the link carries."""
    from callcenter.acd.events import AcdEvent
    from callcenter.calls.switchboard import PhoneRegistered
    from callcenter.sip.ua import RegistrationChanged

    return (*typing.get_args(AcdEvent), RegistrationChanged, PhoneRegistered)


class LinkError(Exception):
    """The bytes received are not a message of this link: the connection is reset."""


@dataclass(frozen=True, slots=True)
class EventReceived:
    seq: int
    wall: float
    event: object


@dataclass(frozen=True, slots=True)
class Acked:
    seq: int


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    kind: str
    payload: Any


@dataclass(frozen=True, slots=True)
class Reply:
    id: int
    ok: bool
    payload: Any


LinkMessage = EventReceived | Acked | Request | Reply

_Convert = Callable[[Any], Any]


def _identity(value: Any) -> Any:
    return value


def _address(value: Any) -> Address:
    host, port, transport = value
    return Address(str(host), int(port), Transport(transport))


def _decoder(hint: Any) -> _Convert:
    """How to rebuild a field's value of type `hint` from its wire form."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        inner = [_decoder(a) for a in typing.get_args(hint) if a is not type(None)]
        if len(inner) == 1 and inner[0] is not _identity:
            one = inner[0]
            return lambda v: None if v is None else one(v)
        return _identity
    if origin is tuple:
        return tuple
    if hint is Address:
        return _address
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return hint
    return _identity


def _encode_value(value: Any) -> Any:
    if isinstance(value, Address):
        return (value.host, value.port, value.transport.value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


class EventCodec:
    """Events as (class name, field values), for the classes given only."""

    def __init__(self, classes: Iterable[type]) -> None:
        self._classes: dict[str, tuple[type, tuple[str, ...], tuple[_Convert, ...]]] = {}
        for cls in classes:
            if not dataclasses.is_dataclass(cls):
                raise TypeError(f"{cls.__name__} is not a dataclass")
            hints = typing.get_type_hints(cls)
            names = field_names(cls)
            self._classes[cls.__name__] = (cls, names, tuple(_decoder(hints[n]) for n in names))

    def encode(self, event: object) -> tuple[str, list[Any]]:
        name = type(event).__name__
        entry = self._classes.get(name)
        if entry is None or type(event) is not entry[0]:
            raise LinkError(f"no codec for event {name}")
        return name, [_encode_value(getattr(event, n)) for n in entry[1]]

    def decode(self, name: str, values: list[Any]) -> object:
        entry = self._classes.get(name) if isinstance(name, str) else None
        if entry is None:
            raise LinkError(f"unknown event {name!r}")
        cls, names, converters = entry
        if not isinstance(values, list) or len(values) != len(names):
            raise LinkError(f"event {name}: {len(names)} values expected")
        try:
            return cls(*(convert(v) for convert, v in zip(converters, values, strict=True)))
        except (TypeError, ValueError) as exc:
            raise LinkError(f"event {name}: {exc}") from exc


class Link:
    """One side of the link: messages to bytes and bytes to messages."""

    def __init__(self, codec: EventCodec) -> None:
        self.codec = codec
        self._packer = msgpack.Packer(use_bin_type=True)
        self._unpacker = msgpack.Unpacker(
            raw=False, use_list=True, max_buffer_size=MAX_MESSAGE, strict_map_key=True
        )

    # -- out ------------------------------------------------------------------------------

    def event(self, seq: int, wall: float, event: object) -> bytes:
        name, values = self.codec.encode(event)
        return self._pack(["E", seq, wall, name, values])

    def ack(self, seq: int) -> bytes:
        return self._pack(["A", seq])

    def request(self, id: int, kind: str, payload: Any) -> bytes:
        return self._pack(["Q", id, kind, payload])

    def reply(self, id: int, ok: bool, payload: Any) -> bytes:
        return self._pack(["R", id, ok, payload])

    def _pack(self, message: list[Any]) -> bytes:
        data: bytes = self._packer.pack(message)
        return data

    # -- in -------------------------------------------------------------------------------

    def receive(self, data: bytes) -> list[LinkMessage]:
        """The messages `data` completes, in order (a message may span reads).
        Raises `LinkError` on bytes that are not messages of this link."""
        try:
            self._unpacker.feed(data)
        except msgpack.BufferFull as exc:
            raise LinkError("message larger than the link accepts") from exc
        out: list[LinkMessage] = []
        try:
            for item in self._unpacker:
                out.append(self._message(item))
        except LinkError:
            raise
        except Exception as exc:  # msgpack's errors for malformed data
            raise LinkError(f"malformed message: {exc}") from exc
        return out

    def _message(self, item: Any) -> LinkMessage:
        if not isinstance(item, list) or not item:
            raise LinkError("a message is a non-empty array")
        match item:
            case ["E", int(seq), int() | float() as wall, str(name), list(values)]:
                return EventReceived(seq, float(wall), self.codec.decode(name, values))
            case ["A", int(seq)]:
                return Acked(seq)
            case ["Q", int(id), str(kind), payload]:
                return Request(id, kind, payload)
            case ["R", int(id), bool(ok), payload]:
                return Reply(id, ok, payload)
        raise LinkError(f"unknown message {str(item[0])[:20]!r} of {len(item)} items")


class Outbox:
    """Events sent but not yet acknowledged, in order, up to `limit`.

    `add` returns False when the outbox is full: the caller must keep that
    event some other way (the records' journal); it is not held here.
    """

    def __init__(self, limit: int = 200_000) -> None:
        self.limit = limit
        self._pending: deque[tuple[int, bytes]] = deque()

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, seq: int, data: bytes) -> bool:
        if len(self._pending) >= self.limit:
            return False
        self._pending.append((seq, data))
        return True

    def acked(self, seq: int) -> int:
        """Forget every event up to `seq`; how many that was."""
        n = 0
        while self._pending and self._pending[0][0] <= seq:
            self._pending.popleft()
            n += 1
        return n

    def unacked(self) -> bytes:
        """Everything not acknowledged, to send again to a new peer, in order."""
        return b"".join(data for _, data in self._pending)
