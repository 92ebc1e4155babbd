"""The link between the call process and the floor process (decision 0004).

Sans-I/O at heart, like the SIP core: `Link` turns messages into bytes and
bytes into messages; `Channel`, a thin asyncio transport, moves the bytes
over a socketpair and matches replies to requests.

On the wire each message is one MessagePack array, which delimits itself, so a
stream needs no framing of its own:

- ``["E", seq, wall, name, [values…]]``: an event of the bus, by its class name
  and its dataclass fields in order (`callcenter.events.field_names`); only
  classes given to the `EventCodec` are rebuilt, so nothing on the wire names
  code to run. The bus's events (`callcenter.events.BusEvent`) hold plain
  values only (text, numbers, booleans, None), so this module needs neither
  the SIP core nor the switchboard, nor any of their types.
- ``["Q", id, kind, payload]`` and ``["R", id, ok, payload]``: a request (an
  agent's command, an administrative change, a snapshot) and its reply.

Events are a one-way feed: nothing is acknowledged or sent again. The
records are durable before an event is sent (the journal, decision 0005), so
a feed that drops (a floor process down or far behind) loses no record; the
receiver sees the gap in the numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import itertools
import types
import typing
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import msgpack
import msgspec
import structlog

from callcenter.events import BusEvent, field_names

__all__ = [
    "Channel",
    "EventCodec",
    "EventReceived",
    "Link",
    "LinkError",
    "RemoteError",
    "Reply",
    "Request",
    "bus_codec",
    "bus_events",
]

log = structlog.get_logger(__name__)

#: Largest message accepted (a snapshot of a large floor is the biggest).
MAX_MESSAGE = 64 * 1024 * 1024


def bus_events() -> tuple[type, ...]:
    """The classes the runtime publishes on the event bus: what the link carries."""
    return typing.get_args(BusEvent)


def bus_codec() -> EventCodec:
    """The codec for `bus_events`."""
    return EventCodec(bus_events())


class LinkError(Exception):
    """The bytes received are not a message of this link: the connection is reset."""


@dataclass(frozen=True, slots=True)
class EventReceived:
    seq: int
    wall: float
    event: object


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


LinkMessage = EventReceived | Request | Reply


def _accepted(hint: Any) -> tuple[type, ...]:
    """The types a field's value may have on arrival; () when the annotation
    does not say (mypyc keeps `str | None` as `type`; the compiled class then
    checks its arguments itself)."""
    if typing.get_origin(hint) is types.UnionType:
        parts = [_accepted(a) for a in typing.get_args(hint)]
        return () if any(not p for p in parts) else tuple(t for p in parts for t in p)
    if hint is type(None):
        return (type(None),)
    if hint is float:
        return (float, int)
    if isinstance(hint, type) and hint is not type:
        return (hint,)
    return ()


# An int beyond MessagePack's 64 bits (a value a person typed) travels as an
# extension type, in decimal; nothing else does: the events' and the requests'
# values are MessagePack's own types.
_BIG_INT = 1


def _array_twin(cls: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """A struct of `cls`'s fields, types and defaults, read from an array. A union
    in a module compiled with mypyc reads as `type` (its annotations are kept in a
    lossy form): such a field is taken as it comes, as `_accepted` does."""
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for f in msgspec.structs.fields(cls):
        kind = Any if f.type is type else f.type
        fields.append((f.name, kind) if f.required else (f.name, kind, f.default))
    return msgspec.defstruct(cls.__name__, fields, array_like=True, frozen=True, gc=False)


class EventCodec:
    """Events as (class name, field values), for the classes given only.

    The bus's events are msgspec structs: their values are read and checked in
    C (`msgspec.structs.astuple`, `msgspec.convert` to an array-like twin). The
    agents' commands and the administrative changes (`control.py`), which go
    a few at a time, are dataclasses, checked field by field here.
    """

    def __init__(self, classes: Iterable[type]) -> None:
        # A struct's values are checked by msgspec against an array-like twin of
        # it (the same fields and types), then the struct is made from them.
        self._structs: dict[str, tuple[type[msgspec.Struct], type[msgspec.Struct]]] = {}
        self._classes: dict[str, tuple[type, tuple[str, ...], tuple[tuple[type, ...], ...]]] = {}
        for cls in classes:
            if issubclass(cls, msgspec.Struct):
                self._structs[cls.__name__] = (cls, _array_twin(cls))
                continue
            if not dataclasses.is_dataclass(cls):
                raise TypeError(f"{cls.__name__} is neither an array-like struct nor a dataclass")
            hints = typing.get_type_hints(cls)
            names = field_names(cls)
            self._classes[cls.__name__] = (cls, names, tuple(_accepted(hints[n]) for n in names))

    def encode(self, event: object) -> tuple[str, Any]:
        name = type(event).__name__
        struct = self._structs.get(name)
        if struct is not None and struct[0] is type(event):
            return name, msgspec.structs.astuple(event)
        entry = self._classes.get(name)
        if entry is None or type(event) is not entry[0]:
            raise LinkError(f"no codec for event {name}")
        return name, [getattr(event, n) for n in entry[1]]

    def decode(self, name: str, values: list[Any]) -> object:
        struct = self._structs.get(name) if isinstance(name, str) else None
        if struct is not None:
            if not isinstance(values, list) or len(values) != len(struct[1].__struct_fields__):
                raise LinkError(f"event {name}: {len(struct[1].__struct_fields__)} values expected")
            try:
                checked = msgspec.convert(values, struct[1])
            except msgspec.ValidationError as exc:
                raise LinkError(f"event {name}: {exc}") from None
            return struct[0](*msgspec.structs.astuple(checked))
        entry = self._classes.get(name) if isinstance(name, str) else None
        if entry is None:
            raise LinkError(f"unknown event {name!r}")
        cls, names, accepted = entry
        if not isinstance(values, list) or len(values) != len(names):
            raise LinkError(f"event {name}: {len(names)} values expected")
        for field, value, types_ in zip(names, values, accepted, strict=True):
            if types_ and not isinstance(value, types_):
                raise LinkError(f"event {name}: {field} is a {type(value).__name__}")
        try:
            return cls(*values)
        except (TypeError, ValueError) as exc:
            raise LinkError(f"event {name}: {exc}") from exc

    def pack_value(self, value: Any) -> Any:
        """msgpack's `default`: the values it does not know itself."""
        if type(value) is int:  # msgpack packs the others itself
            return msgpack.ExtType(_BIG_INT, str(value).encode())
        raise LinkError(f"cannot send a {type(value).__name__}")

    def unpack_value(self, code: int, data: bytes) -> Any:
        """msgpack's `ext_hook`."""
        if code != _BIG_INT:
            raise LinkError(f"unknown value of extension type {code}")
        try:
            return int(data.decode("ascii"))
        except ValueError as exc:
            raise LinkError(f"bad integer: {exc}") from exc


class Link:
    """One side of the link: messages to bytes and bytes to messages."""

    def __init__(self, codec: EventCodec) -> None:
        self.codec = codec
        self._packer = msgpack.Packer(use_bin_type=True, default=codec.pack_value)
        self._unpacker = msgpack.Unpacker(
            raw=False,
            use_list=True,
            max_buffer_size=MAX_MESSAGE,
            strict_map_key=True,
            ext_hook=codec.unpack_value,
        )

    # -- out ------------------------------------------------------------------------------

    def event(self, seq: int, wall: float, event: object) -> bytes:
        name, values = self.codec.encode(event)
        return self._pack(["E", seq, wall, name, values])

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
            case ["Q", int(id), str(kind), payload]:
                return Request(id, kind, payload)
            case ["R", int(id), bool(ok), payload]:
                return Reply(id, ok, payload)
        raise LinkError(f"unknown message {str(item[0])[:20]!r} of {len(item)} items")


class RemoteError(Exception):
    """The other side refused a request: `kind` names its error's class."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


#: Answers a request (kind, payload) with a payload, or raises: the error's
#: class name and text go back as the refusal. Called in order, on the loop;
#: an awaitable answer is awaited in a task of its own and sent when ready.
RequestHandler = Callable[[str, Any], Any]


class Channel:
    """One side of the link over an asyncio stream (a socketpair's end).

    `run` reads until the other side closes, handing events to `on_event`
    and requests to `on_request` (whose answer or refusal is sent back at
    once); `request` sends one and waits for its reply. Writes never wait:
    the socket's buffer grows instead, and the feed's sender looks at
    `buffered` and drops rather than let it grow without bound.
    """

    def __init__(
        self,
        link: Link,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        on_event: Callable[[EventReceived], None] | None = None,
        on_request: RequestHandler | None = None,
    ) -> None:
        self.link = link
        self._reader = reader
        self._writer = writer
        self._on_event = on_event
        self._on_request = on_request
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._answering: set[asyncio.Future[None]] = set()
        self.closed = False

    def send(self, data: bytes) -> None:
        if self.closed or self._writer.is_closing():
            raise ConnectionResetError("the link is closed")
        self._writer.write(data)

    def buffered(self) -> int:
        """Bytes written and not yet taken by the other side's socket."""
        return self._writer.transport.get_write_buffer_size()

    async def request(self, kind: str, payload: Any, timeout: float = 5.0) -> Any:
        """The reply's payload; `RemoteError` if refused, `ConnectionError` if
        the link closes first, `TimeoutError` after `timeout` seconds."""
        id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[id] = future
        try:
            self.send(self.link.request(id, kind, payload))
            async with asyncio.timeout(timeout):
                return await future
        finally:
            self._waiting.pop(id, None)

    async def run(self) -> None:
        """Read until end of stream or bytes that are not this link's (logged)."""
        try:
            while data := await self._reader.read(256 * 1024):
                for message in self.link.receive(data):
                    self._dispatch(message)
        except LinkError as exc:
            log.error("link closed: bad data from the other side", error=str(exc))
        except ConnectionError as exc:
            log.warning("link lost", error=str(exc))
        finally:
            self._closed()

    def _dispatch(self, message: LinkMessage) -> None:
        match message:
            case EventReceived():
                if self._on_event is not None:
                    self._on_event(message)
            case Request(id, kind, payload):
                self._answer(id, kind, payload)
            case Reply(id, ok, payload):
                future = self._waiting.get(id)
                if future is None or future.done():
                    return  # its requester gave up waiting
                if ok:
                    future.set_result(payload)
                else:
                    kind, text = _refusal(payload)
                    future.set_exception(RemoteError(kind, text))

    def _answer(self, id: int, kind: str, payload: Any) -> None:
        if self._on_request is None:
            self.send(self.link.reply(id, False, ["LinkError", "this side takes no requests"]))
            return
        try:
            answer = self._on_request(kind, payload)
            if inspect.isawaitable(answer):
                task = asyncio.ensure_future(self._answer_later(id, answer))
                self._answering.add(task)
                task.add_done_callback(self._answering.discard)
                return
            reply = self.link.reply(id, True, answer)
        except Exception as exc:  # the refusal goes back; this side goes on
            reply = self.link.reply(id, False, [type(exc).__name__, str(exc)])
        self.send(reply)

    async def _answer_later(self, id: int, answer: Awaitable[Any]) -> None:
        try:
            reply = self.link.reply(id, True, await answer)
        except Exception as exc:
            reply = self.link.reply(id, False, [type(exc).__name__, str(exc)])
        if not self.closed:
            self.send(reply)

    def _closed(self) -> None:
        self.closed = True
        for task in self._answering:
            task.cancel()
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(ConnectionResetError("the link closed"))
        with contextlib.suppress(Exception):
            self._writer.close()

    async def close(self) -> None:
        self._closed()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()


def _refusal(payload: Any) -> tuple[str, str]:
    match payload:
        case [str(kind), str(text)]:
            return kind, text
    return "LinkError", f"refused: {payload!r}"[:200]
