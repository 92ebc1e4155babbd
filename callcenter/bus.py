"""The in-process event stream: one publisher, many subscribers, none can block it.

Every event the cores return (call offered, ring tick, answered, abandoned,
agent state changed, …) is published here with the wall-clock time it
happened; what the events are, and how their fields are read, is
`callcenter.events`'s (the bus itself takes any value). The desktop, the
records writer and the metrics subscribe. Each subscriber has its own bounded
queue; when a slow one falls behind, its newest events are dropped and
counted rather than holding up call handling (`Subscription.dropped`), and
the subscriber can tell from the gap.

A `Tap` is the one kind of consumer that sees every event at once, in the
publisher's own call: the records journal (`callcenter.records.appender`),
which must not lose an event to a full queue. Taps buffer what they are
given; `flush` makes it durable, and the runtime calls it after each step
before the step's datagrams are sent (write-ahead: a BYE is answered only once
the call's records are in the journal).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["EventBus", "Published", "Subscription", "Tap"]

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class Published(Generic[E]):
    """An event as subscribers see it: numbered, stamped, in order."""

    seq: int
    wall: float
    event: E


class Subscription(Generic[E]):
    def __init__(self, name: str, maxsize: int) -> None:
        self.name = name
        self.queue: asyncio.Queue[Published[E]] = asyncio.Queue(maxsize)
        self.dropped = 0

    async def get(self) -> Published[E]:
        return await self.queue.get()

    def get_nowait(self) -> Published[E] | None:
        try:
            return self.queue.get_nowait()
        except asyncio.QueueEmpty:
            return None


class Tap(Protocol):
    """A consumer called in `publish` itself: it must not block or raise."""

    def add(self, item: Published[Any]) -> None: ...
    def flush(self) -> None: ...


class EventBus(Generic[E]):
    def __init__(self) -> None:
        # A tuple, replaced on (un)subscribe: publishing, a dozen times per
        # call, iterates it as it is. Subscribers unsubscribe when they stop.
        self._subscriptions: tuple[Subscription[E], ...] = ()
        self._taps: tuple[Tap, ...] = ()
        self._seq = 0

    def tap(self, tap: Tap) -> None:
        """Give `tap` every event from now on, in `publish` itself."""
        self._taps = (*self._taps, tap)

    def untap(self, tap: Tap) -> None:
        self._taps = tuple(t for t in self._taps if t is not tap)

    def flush(self) -> None:
        """Make durable what the taps hold (the runtime, after each step)."""
        for tap in self._taps:
            tap.flush()

    def subscribe(self, name: str, maxsize: int = 10_000) -> Subscription[E]:
        sub: Subscription[E] = Subscription(name, maxsize)
        self._subscriptions = (*self._subscriptions, sub)
        return sub

    def unsubscribe(self, sub: Subscription[E]) -> None:
        self._subscriptions = tuple(s for s in self._subscriptions if s is not sub)

    def publish(self, event: E, wall: float) -> None:
        """Never blocks, never raises: a full subscriber loses this event."""
        self._seq += 1
        self._fan_out(Published(self._seq, wall, event))

    def republish(self, seq: int, wall: float, event: E) -> None:
        """An event another process's bus numbered (the floor process, decision
        0004): published here under that number, so records keep their key."""
        self._seq = seq
        self._fan_out(Published(seq, wall, event))

    def _fan_out(self, item: Published[E]) -> None:
        for tap in self._taps:
            tap.add(item)
        for sub in self._subscriptions:
            try:
                sub.queue.put_nowait(item)
            except asyncio.QueueFull:
                sub.dropped += 1

    @property
    def published(self) -> int:
        return self._seq
