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

The record of a call (docs/desktop.md, "The call's record"): `hello` lists
the calls the agent answered without a record yet (`records_pending`, from
the records) and the SOP's texts; a record is filed under the call's caller
(the records find or make the customer), and the caller's cached look-up is
forgotten when their call ends and when a record or a correction of them is
saved. For a queue that keeps its agents in wrap-up until the record is
saved, storing the record of the call the agent is wrapping up ends that
wrap-up (the ACD's `EndWrapUp`).

The agent's own day (`agent.day`) is read from the records for the day the
board counts (from the service's midnight), when the page asks.

Call-backs offered to free agents (`callback.preview`, preview.py): when an
agent becomes ready, the next item due is looked for (a task: the floor and
the records are read) and sent to their page, unless a caller waits in their
queues; the page asks again (`agent.preview`) and skips (`agent.preview_skip`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

import msgspec
import structlog
from aiohttp import WSCloseCode

from callcenter.acd.errors import AcdError
from callcenter.acd.events import (
    AgentLogin,
    AgentStateChanged,
    CallAbandoned,
    CallEnded,
    CallFailed,
    CallOffered,
    CallOverflowed,
    CallQueued,
    CallTransferred,
    EndWrapUp,
)
from callcenter.clock import Clock
from callcenter.control import CallControl
from callcenter.log import LogBudget
from callcenter.records.customers import Customer, CustomerRefused
from callcenter.records.forms import (
    CallForm,
    CallNotRecordedYet,
    ComplaintClass,
    FormRefused,
    PendingRecord,
    SavedForm,
)
from callcenter.records.stats import AgentDay
from callcenter.tasks import cancel_and_wait
from callcenter.throttle import SuppressedLog

from .agent_feed import AgentFeed, AgentMessage, CallOfferedMessage, CallProgress, encode
from .board import day_start
from .clients import Client
from .messages import (
    Day,
    Preview,
    PreviewSkip,
    ProtocolError,
    SubmitForm,
    UpdateCustomer,
    form_from,
)
from .preview import FloorFn, NextItemFn, Previews
from .replies import (
    AgentDayReply,
    AgentHello,
    CallbackPreview,
    CustomerUpdated,
    DayOfferWire,
    ErrorReply,
    FormSaved,
    encode_reply,
)

__all__ = ["AgentDesk", "AgentInfo", "DayFn"]

log = structlog.get_logger("callcenter.desktop")

POP_LOOKUP_LIMIT = 0.5  # seconds a pop waits for its customer
OFFERS_KEPT = 50  # calls per agent whose forms are known to be theirs without the records
PENDING_LIMIT = 2.0  # seconds `hello` waits for the records of the calls awaiting a record
DAY_LIMIT = 2.0  # seconds `agent.day` waits for the records
CALLERS_KEPT = 20_000  # calls in progress whose caller's look-up to forget when they end

#: Saves a form: (the form, offered to its agent?, the call's caller if known).
SaveForm = Callable[[CallForm, bool, str | None], Awaitable[SavedForm]]
#: Corrects a customer: (agent, customer id, changes, the agent's recent callers).
UpdateCustomerFn = Callable[
    [str, int, dict[str, str | None], list[str]], Awaitable[Customer | None]
]
#: An agent's day from the records: (agent, start, end).
DayFn = Callable[[str, datetime, datetime], Awaitable[AgentDay]]


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
        save_form: SaveForm | None = None,
        replay: int = 500,
        popped: Callable[[float], None] | None = None,
        pending: Callable[[str], Awaitable[list[PendingRecord]]] | None = None,
        update_customer: UpdateCustomerFn | None = None,
        forget: Callable[[str], None] | None = None,
        greetings: dict[str, str] | None = None,
        wrap_until_record: frozenset[str] = frozenset(),
        sop: dict[str, Any] | None = None,
        day: DayFn | None = None,
        tz: tzinfo | None = None,
        next_callback: NextItemFn | None = None,
        floor: FloorFn | None = None,
        queue_groups: dict[str, str] | None = None,
        preview: frozenset[str] = frozenset(),
    ) -> None:
        self.agents = agents
        self.control = control
        self._clock = clock
        self._lookup = lookup
        self._save_form = save_form
        self._pending = pending
        self._update_customer = update_customer
        self._forget = forget
        self._day = day
        self._tz = tz  # the board's day: from midnight here (None: the local time zone)
        self._replay = replay
        # Told the seconds from each offer (its event's wall time, stamped where
        # the ACD runs) to its pop queued for the agent's websocket.
        self._popped = popped
        self._feed = AgentFeed(greeting, self._number, name=self._name, greetings=greetings)
        # The database down (its disk full) fails every pop's look-up: a line per
        # call offered, hundreds a second at the floor's peak, says no more than 5.
        self._lookup_log = LogBudget(5, 60.0)
        self._sop: dict[str, Any] = {
            "closing": "", "repair_prices": [], **(sop or {}),
            "complaint_classes": [c.value for c in ComplaintClass],
        }  # fmt: skip
        # Queues whose agents stay in wrap-up until the call's record is saved.
        self._wrap_until_record = wrap_until_record
        # Per agent: the call whose record ends their wrap-up; the calls of such
        # queues whose record was saved before they ended.
        self._wrapping: dict[str, str] = {}
        self._recorded_early: dict[str, str] = {}
        # Calls offered and not over: their caller (forgotten by the look-up when over).
        self._callers: OrderedDict[str, tuple[str, str]] = OrderedDict()  # id -> (caller, queue)
        self._commands: set[asyncio.Task[None]] = set()
        # Call-backs offered to free agents: the queues with preview on, the skips.
        self._previews = Previews(
            next_callback, floor if floor is not None else _no_floor, clock,
            queue_groups=queue_groups, preview=preview,
        )  # fmt: skip
        self._pending_log = SuppressedLog(10.0)
        self.clients: dict[str, Client] = {}
        # Per agent: the last messages as sent, (seq, JSON text).
        self.history: dict[str, deque[tuple[int, str]]] = {}
        self._seq: dict[str, itertools.count[int]] = {}
        # Per agent: messages held behind a pop whose lookup is running ([None] slots).
        self._outbox: dict[str, deque[list[AgentMessage | None]]] = {}
        self._lookups: set[asyncio.Task[None]] = set()
        # Per agent: the calls last offered to them (their callers), whose forms need no
        # look in the records.
        self._offered: dict[str, OrderedDict[str, str]] = {}

    # -- connections ----------------------------------------------------------------------

    async def connect(self, client: Client, since: str | None) -> None:
        """Log the agent in to the ACD if offline (not ready), greet the browser,
        replay what it missed, then make it the agent's one session."""
        agent_id = client.login.user_id
        # Read first: nothing may wait between the reading of the state and the pops
        # and the client's taking the agent's messages, or a pop meanwhile is lost.
        pending = await self._records_pending(agent_id)
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
            calls=[self._restored(agent_id, pop) for pop in self._feed.pops(agent_id)],
            seq=self._last_seq(agent_id),
            records_pending=pending,
            sop=self._sop,
        )))  # fmt: skip
        if since is not None and since.isdigit():
            for seq, text in self.history.get(agent_id, ()):
                if seq > int(since):
                    client.send(text)
        # Nothing waited since the state was read: from here on this client gets
        # the agent's messages, after its hello. The session it replaces is closed.
        other = self.clients.get(agent_id)
        self.clients[agent_id] = client
        self._previews.session(agent_id, client.token)
        if other is not None:
            await other.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"replaced")

    def disconnect(self, client: Client) -> None:
        if self.clients.get(client.login.user_id) is client:
            del self.clients[client.login.user_id]

    async def stop(self) -> None:
        await cancel_and_wait([*self._lookups, *self._commands])
        for client in list(self.clients.values()):
            await client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    def queue_configured(
        self,
        name: str,
        greeting: str | None,
        wrap_until_record: bool,
        *,
        preview: bool = False,
        group: str | None = None,
    ) -> None:
        """A queue's configuration changed (the administration): its pops' greeting,
        whether its agents' wrap-up waits for the record, whether its agents are
        offered call-backs when free, and its agents' group."""
        self._feed.set_greeting(name, greeting)
        self._previews.configure(name, group, preview)
        if wrap_until_record:
            self._wrap_until_record = self._wrap_until_record | {name}
        else:
            self._wrap_until_record = self._wrap_until_record - {name}

    def greeting(self, queue: str, agent_id: str) -> str:
        """What the agent's pop of a call of `queue` greets with."""
        return self._feed.greet(queue, agent_id)

    def offers_callbacks(self, queue: str) -> bool:
        """Are the agents of `queue` offered call-backs when free (preview)?"""
        return self._previews.offered_in(queue)

    def waits_for_record(self, queue: str) -> bool:
        """Does wrap-up after a call of `queue` last until its record is saved?"""
        return queue in self._wrap_until_record

    # -- call-backs offered to free agents --------------------------------------------------

    async def preview(
        self, agent_id: str, message: Preview | PreviewSkip
    ) -> CallbackPreview | ErrorReply:
        """The next call-back for the agent (`agent.preview`), after skipping the one
        named (`agent.preview_skip`)."""
        if isinstance(message, PreviewSkip):
            self._previews.skip(agent_id, message.item_id)
        answer = await self._previews.offer(agent_id, message.ref, asked=True)
        assert answer is not None  # asked: always an answer
        return answer

    def _offer_when_free(self, agent_id: str) -> None:
        """The agent became ready: offer them the next call-back, if any may be."""
        if not self._previews.active or agent_id not in self.clients:
            return

        async def offer() -> None:
            answer = await self._previews.offer(agent_id, None, asked=False)
            client = self.clients.get(agent_id)
            if answer is not None and client is not None:
                client.send(encode_reply(answer))

        task = asyncio.get_running_loop().create_task(offer())
        self._commands.add(task)
        task.add_done_callback(self._commands.discard)

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
        offers = self._offered.get(agent_id)
        caller = offers.get(form.call_id) if offers is not None and form.call_id else None
        offered = caller is not None
        try:
            saved = await self._save_form(form, offered, caller)
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
        for number in saved.numbers:
            self._forget_number(number)
        if form.call_id is not None:
            self._recorded(agent_id, form.call_id)
        return FormSaved(
            ref=message.ref, form_id=form.id, duplicate=not saved.stored,
            customer_id=saved.customer_id, follow_up_id=saved.follow_up_id,
        )  # fmt: skip

    def _recorded(self, agent_id: str, call_id: str) -> None:
        """The agent's record of `call_id` is stored: the end of their wrap-up for it,
        when its queue waits for the record (or when the call ends, if it has not)."""
        if self._wrapping.get(agent_id) == call_id:
            del self._wrapping[agent_id]
            self._command(EndWrapUp(agent_id))
        elif call_id in self._callers and self._callers[call_id][1] in self._wrap_until_record:
            self._recorded_early[agent_id] = call_id

    def _command(self, command: EndWrapUp) -> None:
        async def send() -> None:
            try:
                await self.control.command(command)
            except AcdError:  # wrap-up ended meanwhile (ready, not ready, the limit)
                pass
            except Exception as exc:
                log.warning("wrap-up not ended", agent=command.agent_id, error=str(exc))

        task = asyncio.get_running_loop().create_task(send())
        self._commands.add(task)
        task.add_done_callback(self._commands.discard)

    async def update_customer(
        self, agent_id: str, message: UpdateCustomer
    ) -> CustomerUpdated | ErrorReply:
        """An agent's correction of their caller (`customer.update`)."""
        if self._update_customer is None:
            return ErrorReply(
                code="unavailable", message="records are off: nothing was changed",
                ref=message.ref,
            )  # fmt: skip
        offers = self._offered.get(agent_id)
        callers = list(offers.values()) if offers is not None else []
        try:
            customer = await self._update_customer(
                agent_id, message.customer_id, message.changes(), callers
            )
        except CustomerRefused as exc:
            return ErrorReply(code="invalid-form", message=str(exc), ref=message.ref)
        except Exception as exc:  # the database is down: the page may send it again
            log.warning("customer not updated", customer_id=message.customer_id, error=str(exc))
            return ErrorReply(
                code="unavailable",
                message="not changed: the database is unavailable, retry",
                ref=message.ref,
            )
        return CustomerUpdated(ref=message.ref, customer=_customer(customer))

    async def day(self, agent_id: str, message: Day) -> AgentDayReply | ErrorReply:
        """The agent's own day (`agent.day`): today's offers and figures, from the
        records, for the day the board counts (from the service's midnight)."""
        if self._day is None:
            return ErrorReply(
                code="unavailable", message="records are off: no day to show", ref=message.ref
            )
        started = day_start(self._clock.wall(), self._tz)
        ends = day_start(started + 26 * 3600, self._tz)
        try:
            async with asyncio.timeout(DAY_LIMIT):
                day = await self._day(
                    agent_id,
                    datetime.fromtimestamp(started, UTC),
                    datetime.fromtimestamp(ends, UTC),
                )
        except Exception as exc:  # the database is down: the page asks again later
            self._not_read("agent's day not read", agent_id, exc)
            return ErrorReply(
                code="unavailable", message="the records are unavailable, retry", ref=message.ref
            )
        return AgentDayReply(
            ref=message.ref,
            day_started=started,
            offers=[
                DayOfferWire(
                    call_id=o.call_id,
                    queue=o.queue,
                    caller=o.caller,
                    customer_name=o.customer_name,
                    offered_at=o.offered_at.timestamp(),
                    outcome=o.outcome,
                    talk_seconds=o.talk_seconds,
                    recorded=o.recorded,
                )
                for o in day.offers
            ],
            handled=day.handled,
            missed=day.missed,
            without_record=day.without_record,
            finished=day.finished,
            talk_seconds=day.talk_seconds,
            wrap_up_seconds=day.wrap_up_seconds,
            aht_seconds=day.aht_seconds,
        )

    async def _records_pending(self, agent_id: str) -> list[dict[str, Any]]:
        """The calls awaiting this agent's record, with their customers; none when the
        records cannot say within `PENDING_LIMIT` (the page keeps its own drafts)."""
        if self._pending is None:
            return []
        try:
            async with asyncio.timeout(PENDING_LIMIT):
                pending = await self._pending(agent_id)
                customers = await asyncio.gather(
                    *(self._pending_customer(p.caller) for p in pending)
                )
        except Exception as exc:
            self._not_read("records pending not read", agent_id, exc)
            return []
        return [
            {"call_id": p.call_id, "queue": p.queue, "caller": p.caller,
             "caller_name": p.caller_name, "answered_at": p.answered_at.timestamp(),
             "ended_at": p.ended_at.timestamp() if p.ended_at is not None else None,
             "customer": _customer(customer)}
            for p, customer in zip(pending, customers, strict=True)
        ]  # fmt: skip

    def _not_read(self, what: str, agent_id: str, exc: Exception) -> None:
        """The records did not answer: a floor logging in (or finishing calls) at once
        gets one line per 10 s for each kind of read, with a count."""
        count = self._pending_log.hit(what, self._clock.monotonic())
        if count is not None:
            log.warning(what, count=count, last_agent=agent_id, error=str(exc) or repr(exc))

    async def _pending_customer(self, caller: str) -> Customer | None:
        if self._lookup is None:
            return None
        try:
            async with asyncio.timeout(POP_LOOKUP_LIMIT):
                return await self._lookup(caller)
        except Exception:
            return None

    def _forget_number(self, number: str) -> None:
        if self._forget is not None:
            self._forget(number)

    def _restored(self, agent_id: str, pop: CallOfferedMessage) -> dict[str, Any]:
        """A pop as `hello` restores it: the message without its number and version,
        with how far the call got (`answered`, `rings`)."""
        restored: dict[str, Any] = msgspec.to_builtins(pop)
        del restored["seq"], restored["v"]
        restored["rings"], restored["answered"] = self._feed.progress(agent_id, pop.call_id)
        return restored

    # -- events ---------------------------------------------------------------------------

    def observe(self, event: object, wall: float) -> None:
        self._follow(event)
        if isinstance(event, AgentStateChanged) and event.state == "ready":
            self._offer_when_free(event.agent_id)
        elif isinstance(event, CallQueued) and self._previews.active:
            # Inbound calls first: a caller now waits, so the cards of the agents
            # answering that queue are withdrawn (their Call would be refused).
            for agent_id in self._previews.withdrawn(event.queue):
                client = self.clients.get(agent_id)
                if client is not None:
                    gone = CallbackPreview(ref=None, item=None, reason="callers are waiting")
                    client.send(encode_reply(gone))
        for agent_id, message in self._feed.observe(event, wall):
            if isinstance(message, CallOfferedMessage):
                self._pop_offered(agent_id, message)
            elif isinstance(message, CallProgress) and message.stage == "agent-ringing":
                self._pop_dialled(agent_id, message)
            else:
                self._to_agent(agent_id, message)

    def _follow(self, event: object) -> None:
        """What the record of a call needs of the events: the callers of calls going
        on (their look-up is forgotten when the call is over) and the wrap-ups that
        wait for a record."""
        match event:
            case CallOffered(call_id=call_id, caller=caller, queue=queue):
                self._callers[call_id] = (caller, queue)
                self._callers.move_to_end(call_id)
                while len(self._callers) > CALLERS_KEPT:
                    self._callers.popitem(last=False)
            case (
                CallEnded(call_id=call_id, agent_id=agent_id)
                | CallTransferred(call_id=call_id, agent_id=agent_id)
            ):
                known = self._callers.get(call_id)
                if isinstance(event, CallEnded):
                    self._callers.pop(call_id, None)
                if known is None:
                    return
                self._forget_number(known[0])
                if known[1] in self._wrap_until_record:
                    if self._recorded_early.get(agent_id) == call_id:
                        del self._recorded_early[agent_id]
                        self._command(EndWrapUp(agent_id))  # recorded during the call
                    else:
                        self._wrapping[agent_id] = call_id
            case (
                CallAbandoned(call_id=call_id)
                | CallOverflowed(call_id=call_id)
                | CallFailed(call_id=call_id)
            ):
                known = self._callers.pop(call_id, None)
                if known is not None:
                    self._forget_number(known[0])
            case AgentStateChanged(agent_id=agent_id, state=state) if state != "wrap-up":
                self._wrapping.pop(agent_id, None)

    def _pop_offered(self, agent_id: str, pop: CallOfferedMessage) -> None:
        offered = self._offered_calls(agent_id)
        offered[pop.call_id] = pop.caller
        offered.move_to_end(pop.call_id)
        while len(offered) > OFFERS_KEPT:
            offered.popitem(last=False)
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
        try:
            pop.customer = await self._customer_of(pop.caller)
        finally:
            slot[0] = msgspec.structs.replace(pop)  # a copy: the pop kept for hello has no seq
            self._flush(agent_id)
            self._count_pop(pop)

    def _pop_dialled(self, agent_id: str, progress: CallProgress) -> None:
        """A call the agent placed: its first `call.progress` carries the customer,
        looked up by the number dialled, as a pop does (and waits as long)."""
        if self._lookup is None:
            self._to_agent(agent_id, progress)
            return
        slot: list[AgentMessage | None] = [None]
        self._outbox.setdefault(agent_id, deque()).append(slot)
        task = asyncio.get_running_loop().create_task(self._dialled(agent_id, progress, slot))
        self._lookups.add(task)
        task.add_done_callback(self._lookups.discard)

    async def _dialled(
        self, agent_id: str, progress: CallProgress, slot: list[AgentMessage | None]
    ) -> None:
        try:
            progress.customer = await self._customer_of(progress.number)
        finally:
            slot[0] = progress
            self._flush(agent_id)

    async def _customer_of(self, number: str) -> dict[str, Any] | None:
        """The customer with `number`, for a pop: None if there is none, or the
        look-up failed or took longer than `POP_LOOKUP_LIMIT` (logged)."""
        assert self._lookup is not None
        try:
            async with asyncio.timeout(POP_LOOKUP_LIMIT):
                return _customer(await self._lookup(number))
        except Exception as exc:
            if self._lookup_log.take(self._clock.monotonic()):
                log.warning("customer lookup failed", error=str(exc) or type(exc).__name__,
                            **self._lookup_log.written())  # fmt: skip
            return None

    def _offered_calls(self, agent_id: str) -> OrderedDict[str, str]:
        offered = self._offered.get(agent_id)
        if offered is None:
            offered = self._offered[agent_id] = OrderedDict()
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

    def _name(self, agent_id: str) -> str:
        info = self.agents.get(agent_id)
        return info.name if info is not None else ""

    def _last_seq(self, agent_id: str) -> int:
        history = self.history.get(agent_id)
        return history[-1][0] if history else 0


async def _no_floor() -> None:
    return None


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
