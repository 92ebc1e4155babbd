"""The agents' side of the desktop: one session per agent, screen pops with the
customer looked up, every message numbered and kept for replay.

Theory of operation
-------------------
`observe` takes each event from the bus; the pure `AgentFeed` says which
agent is told what. A `call.offered` (the screen pop) is sent once its
customer is looked up: the lookups run side by side, so one agent's lookup
delays no one else's messages, and that agent's later messages wait behind
the pop (`_outbox`), so their order holds. A lookup that takes longer than
half a second pops without the customer rather than after ring 1.

Each message gets the agent's next number, is serialised once, kept (the
last `replay` as text: a floor's worth of dicts would be millions of objects
for the garbage collector) and queued for the agent's websocket if one is
connected. A browser that connects with ``?since=N`` first gets `hello` (the
state and the calls with their pop open), then what followed message N, then
the live stream. One session per agent: a new connection closes the old one,
so no agent sees two pops for one offer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import structlog
from aiohttp import WSCloseCode

from callcenter.acd.errors import AcdError
from callcenter.acd.events import AgentLogin
from callcenter.clock import Clock
from callcenter.control import CallControl
from callcenter.log import LogBudget
from callcenter.records.customers import Customer
from callcenter.records.forms import CallForm, CallNotRecordedYet, FormRefused
from callcenter.tasks import cancel_and_wait

from .agent_feed import AgentFeed, AgentMessage, CallOfferedMessage, encode
from .clients import Client
from .messages import ProtocolError, SubmitForm, form_from
from .replies import AgentHello, ErrorReply, FormSaved, encode_reply

__all__ = ["AgentDesk", "AgentInfo"]

log = structlog.get_logger("callcenter.desktop")

POP_LOOKUP_LIMIT = 0.5  # seconds a pop waits for its customer
OFFERS_KEPT = 50  # calls per agent whose forms are known to be theirs without the records


@dataclass(frozen=True, slots=True)
class AgentInfo:
    id: str
    name: str
    number: str


class AgentDesk:
    def __init__(
        self,
        agents: dict[str, AgentInfo],
        control: CallControl,
        clock: Clock,
        *,
        greeting: str,
        lookup: Callable[[str], Awaitable[Customer | None]] | None = None,
        save_form: Callable[[CallForm, bool], Awaitable[bool]] | None = None,
        replay: int = 500,
        popped: Callable[[float], None] | None = None,
    ) -> None:
        self.agents = agents
        self.control = control
        self._clock = clock
        self._lookup = lookup
        self._save_form = save_form
        self._replay = replay
        # Told the seconds from each offer (its event's wall time, stamped where
        # the ACD runs) to its pop queued for the agent's websocket.
        self._popped = popped
        self._feed = AgentFeed(greeting, self._number)
        # The database down (its disk full) fails every pop's look-up: a line per
        # call offered, hundreds a second at the floor's peak, says no more than 5.
        self._lookup_log = LogBudget(5, 60.0)
        self.clients: dict[str, Client] = {}
        # Per agent: the last messages as sent, (seq, JSON text).
        self.history: dict[str, deque[tuple[int, str]]] = {}
        self._seq: dict[str, itertools.count[int]] = {}
        # Per agent: messages held behind a pop whose lookup is running ([None] slots).
        self._outbox: dict[str, deque[list[AgentMessage | None]]] = {}
        self._lookups: set[asyncio.Task[None]] = set()
        # Per agent: the calls last offered to them, whose forms need no look in the records.
        self._offered: dict[str, deque[str]] = {}

    # -- connections ----------------------------------------------------------------------

    async def connect(self, client: Client, since: str | None) -> None:
        """Log the agent in to the ACD if offline (not ready), greet the browser,
        replay what it missed, then make it the agent's one session."""
        agent_id = client.login.user_id
        view = await self.control.agent_view(agent_id)
        if view is not None and view.state == "offline":
            with contextlib.suppress(AcdError):
                await self.control.command(AgentLogin(agent_id))
            view = await self.control.agent_view(agent_id)
        info = self.agents.get(agent_id)
        client.send(encode_reply(AgentHello(
            role="agent",
            agent={"id": agent_id, "name": info.name if info else agent_id,
                   "number": info.number if info else ""},
            state=view.state if view else "offline",
            reason=view.reason if view else None,
            calls=[_restored(pop) for pop in self._feed.pops(agent_id)],
            seq=self._last_seq(agent_id),
        )))  # fmt: skip
        if since is not None and since.isdigit():
            for seq, text in self.history.get(agent_id, ()):
                if seq > int(since):
                    client.send(text)
        # Nothing waited since the state was read: from here on this client gets
        # the agent's messages, after its hello. The session it replaces is closed.
        other = self.clients.get(agent_id)
        self.clients[agent_id] = client
        if other is not None:
            await other.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"replaced")

    def disconnect(self, client: Client) -> None:
        if self.clients.get(client.login.user_id) is client:
            del self.clients[client.login.user_id]

    async def stop(self) -> None:
        await cancel_and_wait(list(self._lookups))
        for client in list(self.clients.values()):
            await client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    # -- the record of the call -----------------------------------------------------------

    async def submit(self, agent_id: str, message: SubmitForm) -> FormSaved | ErrorReply:
        """Store the agent's record of a call (`form.submit`)."""
        try:
            form = form_from(message, agent_id)
        except ProtocolError as exc:
            return ErrorReply(code=exc.code, message=exc.message, ref=exc.ref)
        if self._save_form is None:
            return ErrorReply(
                code="unavailable", message="records are off: the form was not stored",
                ref=message.ref,
            )  # fmt: skip
        offered = form.call_id is not None and form.call_id in self._offered.get(agent_id, ())
        try:
            stored = await self._save_form(form, offered)
        except FormRefused as exc:  # retrying will not help: the agent must change it
            return ErrorReply(code="invalid-form", message=str(exc), ref=message.ref)
        except CallNotRecordedYet:
            return ErrorReply(
                code="unavailable",
                message="not stored yet: the records do not have this call yet, retry",
                ref=message.ref,
            )
        except Exception as exc:  # the database is down: the page keeps the form
            log.warning("form not stored", form_id=form.id, error=str(exc))
            return ErrorReply(
                code="unavailable",
                message="not stored yet: the database is unavailable, retry",
                ref=message.ref,
            )
        return FormSaved(ref=message.ref, form_id=form.id, duplicate=not stored)

    # -- events ---------------------------------------------------------------------------

    def observe(self, event: object, wall: float) -> None:
        for agent_id, message in self._feed.observe(event, wall):
            if isinstance(message, CallOfferedMessage):
                self._pop_offered(agent_id, message)
            else:
                self._to_agent(agent_id, message)

    def _pop_offered(self, agent_id: str, pop: CallOfferedMessage) -> None:
        offered = self._offered_calls(agent_id)
        if pop.call_id not in offered:
            offered.append(pop.call_id)
        if self._lookup is None:
            self._to_agent(agent_id, msgspec.structs.replace(pop))
            self._count_pop(pop)
            return
        slot: list[AgentMessage | None] = [None]
        self._outbox.setdefault(agent_id, deque()).append(slot)
        task = asyncio.get_running_loop().create_task(self._pop(agent_id, pop, slot))
        self._lookups.add(task)
        task.add_done_callback(self._lookups.discard)

    async def _pop(
        self, agent_id: str, pop: CallOfferedMessage, slot: list[AgentMessage | None]
    ) -> None:
        assert self._lookup is not None
        try:
            async with asyncio.timeout(POP_LOOKUP_LIMIT):
                pop.customer = _customer(await self._lookup(pop.caller))
        except Exception as exc:
            if self._lookup_log.take(self._clock.monotonic()):
                log.warning("customer lookup failed", error=str(exc) or type(exc).__name__,
                            **self._lookup_log.written())  # fmt: skip
        finally:
            slot[0] = msgspec.structs.replace(pop)  # a copy: the pop kept for hello has no seq
            self._flush(agent_id)
            self._count_pop(pop)

    def _offered_calls(self, agent_id: str) -> deque[str]:
        offered = self._offered.get(agent_id)
        if offered is None:
            offered = self._offered[agent_id] = deque(maxlen=OFFERS_KEPT)
        return offered

    def _count_pop(self, pop: CallOfferedMessage) -> None:
        if self._popped is not None:
            self._popped(max(0.0, self._clock.wall() - pop.offered_at))

    def _flush(self, agent_id: str) -> None:
        """Deliver the agent's messages that no pending pop holds back, in order."""
        outbox = self._outbox.get(agent_id)
        while outbox and outbox[0][0] is not None:
            message = outbox.popleft()[0]
            assert message is not None
            self._deliver(agent_id, message)
        if outbox is not None and not outbox:
            del self._outbox[agent_id]

    def _to_agent(self, agent_id: str, message: AgentMessage) -> None:
        outbox = self._outbox.get(agent_id)
        if outbox:  # a pop ahead of it waits for its customer lookup
            outbox.append([message])
        else:
            self._deliver(agent_id, message)

    def _deliver(self, agent_id: str, message: AgentMessage) -> None:
        """Number the message, keep it for replay and send it: serialised once, here."""
        counter = self._seq.setdefault(agent_id, itertools.count(1))
        message.seq = seq = next(counter)
        try:
            text = encode(message)
        except Exception:  # a value msgspec cannot write: the agent's later messages go on
            log.exception("agent message not sent", type=type(message).__name__, agent=agent_id)
            return
        history = self.history.setdefault(agent_id, deque(maxlen=self._replay))
        history.append((seq, text))
        client = self.clients.get(agent_id)
        if client is not None:
            client.send(text)

    def _number(self, agent_id: str) -> str:
        info = self.agents.get(agent_id)
        return info.number if info is not None else ""

    def _last_seq(self, agent_id: str) -> int:
        history = self.history.get(agent_id)
        return history[-1][0] if history else 0


def _restored(pop: CallOfferedMessage) -> dict[str, Any]:
    """A pop as `hello` restores it: the message without its number and version."""
    restored: dict[str, Any] = msgspec.to_builtins(pop)
    del restored["seq"], restored["v"]
    return restored


def _customer(customer: Customer | None) -> dict[str, Any] | None:
    if customer is None:
        return None
    return {
        "id": customer.id,
        "name": customer.name,
        "address": customer.address,
        "vip": customer.vip,
        "notes": customer.notes,
        "numbers": list(customer.numbers),
        "recent_calls": _wire_rows(customer.recent_calls),
        "open_complaints": _wire_rows(customer.open_complaints),
        "follow_ups": _wire_rows(customer.follow_ups),
    }


def _wire_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with their times as the pop has always sent them (``str(datetime)``:
    "2026-12-07 10:00:00+00:00"), which msgspec would write in ISO form."""
    return [{k: str(v) if isinstance(v, datetime) else v for k, v in row.items()} for row in rows]
