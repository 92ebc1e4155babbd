"""The runtime: feeds the pure core from the sockets and executes its actions.

The pattern is aioquic's protocol adapter. Every input (a datagram, a framed
stream message, a closed connection, an agent's command, a timer) is handed to
the `Switchboard` with `loop.time()` as `now`; the returned events are
logged, counted and published on the bus with the wall-clock time, the
records among them appended to the journal (the bus's taps, flushed), and
only then is each `Send` handed to the transports, in order (write-ahead:
decision 0005); then ONE timer is re-armed
at the core's next deadline. An early or spurious timer fire is harmless: the
core only does what is due.

A per-input guard catches anything the core raises, logs it with the Call-ID
and counts it, so a bug triggered by one message can never stop the service.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any

import structlog

from callcenter.acd.agents import AgentState
from callcenter.acd.engine import Acd, AcdSnapshot, AgentView
from callcenter.acd.events import LEG_FAILURES, AcdAction, AcdCommand, OfferEnded, OutboundEnded
from callcenter.bus import EventBus
from callcenter.calls.switchboard import (
    CallRefused,
    Dropped,
    Switchboard,
    SwitchboardOutput,
    TransferRefused,
)
from callcenter.clock import Clock
from callcenter.events import PhoneRegistered, RegistrationChanged, event_fields
from callcenter.health import PhoneReach
from callcenter.log import LogBudget, current_call
from callcenter.metrics.sip import SipMetrics
from callcenter.sip.aio import SipTransports, TransportConfig
from callcenter.sip.errors import ParseError
from callcenter.sip.events import (
    KeepAliveReceived,
    MessageRejected,
    PasswordGuessing,
    Send,
    TransactionTimedOut,
)
from callcenter.sip.message import Address, Message, Transport
from callcenter.sip.parser import KeepAlive
from callcenter.sip.ua import RegistrationStatus
from callcenter.throttle import GLOBAL, SuppressedLog

__all__ = ["CoreFactory", "SipRuntime"]

log = structlog.get_logger("callcenter.sip")
calls_log = structlog.get_logger("callcenter.calls")

CoreFactory = Callable[[dict[Transport, tuple[str, int]]], Switchboard]


class SipRuntime:
    """Owns the transports and the core; implements `SipSink`."""

    def __init__(
        self,
        transport_config: TransportConfig,
        core_factory: CoreFactory,
        metrics: SipMetrics,
        bus: EventBus[Any],
        clock: Clock,
    ) -> None:
        self._core_factory = core_factory
        self.metrics = metrics
        self.bus = bus
        self.clock = clock
        self.transports = SipTransports(transport_config, self)
        self._core: Switchboard | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rejection_log = LogBudget(20, 10.0)
        # A defect an input sets off may be set off by every input like it.
        self._failure_log = LogBudget(5, 60.0)
        # The global budget's refusals: their own line, which a flood of them
        # cannot repeat more than once per 10 s nor take from the rejections'.
        self._flood_log = SuppressedLog(10.0, max_keys=1)
        self.dropped = 0
        self._debug = False

    @property
    def core(self) -> Switchboard:
        if self._core is None:
            raise RuntimeError("SIP runtime not started")
        return self._core

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the sockets, build the core with the bound addresses, register."""
        self._loop = asyncio.get_running_loop()
        # Read once: asking the (uncached) structlog proxy per message costs.
        self._debug = log.is_enabled_for(logging.DEBUG)
        await self.transports.start()
        self._core = self._core_factory(dict(self.transports.bound))
        bound = {t.lower(): f"{h}:{p}" for t, (h, p) in self.transports.bound.items()}
        log.info("sip listening", **bound)
        self._run(lambda now: self.core.start(now))

    async def stop(self, timeout: float = 3.0) -> None:
        """Turn away waiting callers, de-register (bounded), then close every socket."""
        if self._core is not None:
            self._run(lambda now: self.core.stop(now))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not self.core.ua.stopping_done and loop.time() < deadline:
                await asyncio.sleep(0.02)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self.transports.close()

    def registration_status(self) -> list[RegistrationStatus]:
        if self._core is None or self._loop is None:
            return []
        return self._core.ua.registration_status(self._loop.time())

    def phone_reach(self) -> PhoneReach | None:
        """The agents' phones registered now (None in pbx mode or before the core)."""
        core = self._core
        if core is None or self._loop is None or core.registrar is None:
            return None
        now = self._loop.time()
        registrar = core.registrar
        agents = registered = logged_in = both = 0
        for agent in core.acd.agents.values():
            reachable = bool(registrar.lookup(agent.extension, now))
            present = agent.state is not AgentState.OFFLINE
            agents += 1
            registered += reachable
            logged_in += present
            both += reachable and present
        return PhoneReach(agents, registered, logged_in, both)

    def snapshot(self) -> AcdSnapshot | None:
        """The ACD's floor now, with the number of the last event published."""
        if self._core is None or self._loop is None:
            return None
        snap = self._core.acd.snapshot(self._loop.time())
        return AcdSnapshot(snap.queues, snap.agents, snap.calls, self.bus.published)

    def acd_now(self) -> tuple[Acd, float] | None:
        """The ACD and the loop's time, for what reads the ACD on the loop (the
        metrics' floor gauges); None before the core is built."""
        if self._core is None or self._loop is None:
            return None
        return self._core.acd, self._loop.time()

    def agent_view(self, agent_id: str) -> AgentView | None:
        if self._core is None or self._loop is None:
            return None
        return self._core.acd.agent_view(agent_id, self._loop.time())

    def administer(self, change: Callable[[Acd, float], list[AcdAction]]) -> None:
        """An administrative change; the ACD's errors propagate to the caller."""
        assert self._loop is not None
        now = self._loop.time()
        self._execute_all(self.core.administer(change, now), now)
        self._rearm()

    def command(self, cmd: AcdCommand) -> None:
        """An agent's command. The ACD's errors (unknown agent, invalid
        transition) propagate to the caller, who reports them to the agent."""
        assert self._loop is not None
        now = self._loop.time()
        actions = self.core.command(cmd, now)
        self._execute_all(actions, now)
        self._rearm()

    # -- SipSink --------------------------------------------------------------------------

    def datagram_received(self, data: bytes, source: Address) -> None:
        self.metrics.count("in", data)
        # The Call-ID is read from these bytes only if a line is written.
        self._run_about(data, lambda now: self.core.receive(data, source, now))

    def stream_item_received(self, item: Message | KeepAlive | ParseError, source: Address) -> None:
        call_id = None
        if isinstance(item, Message):
            self.metrics.count_message("in", item)
            call_id = item.headers.get("Call-ID")
        self._run_about(call_id, lambda now: self.core.receive_stream_item(item, source, now))

    def connection_lost(self, peer: Address) -> None:
        if self._core is not None:
            self._run(lambda now: self.core.transport_error(peer, now))

    # -- the loop -------------------------------------------------------------------------

    def _run_about(
        self, call: str | bytes | None, step: Callable[[float], list[SwitchboardOutput]]
    ) -> None:
        """`_run` for a message: the log lines written meanwhile carry its Call-ID
        (callcenter.log.add_call_id)."""
        token = current_call.set(call)
        try:
            self._run(step)
        finally:
            current_call.reset(token)

    def _run(self, step: Callable[[float], list[SwitchboardOutput]]) -> None:
        assert self._loop is not None
        now = self._loop.time()
        try:
            actions = step(now)
        except Exception:  # the per-input guard: log (bounded), count, keep serving
            self.metrics.parse_errors.labels("internal").inc()
            if self._failure_log.take(now):
                log.exception("core failed on input", **self._failure_log.written())
            actions = []
        self._execute_all(actions, now)
        self._rearm()

    def _execute_all(self, actions: list[SwitchboardOutput], now: float) -> None:
        """The step's events first, then its records made durable (the bus's
        taps: the journal), then its datagrams: write-ahead, so nothing is
        answered whose record a crash could lose (decision 0005)."""
        sends: list[Send] = []
        for action in actions:
            if type(action) is Send:
                sends.append(action)
                continue
            try:
                self._execute(action, now)
            except Exception:
                log.exception("action failed", action=type(action).__name__)
        if len(sends) < len(actions):
            self.bus.flush()
        for send in sends:
            try:
                self._execute(send, now)
            except Exception:
                log.exception("action failed", action="Send")

    def _execute(self, action: SwitchboardOutput, now: float) -> None:
        match action:
            case Send(data, dest):
                self.metrics.count("out", data)
                if self._debug:
                    log.debug("sip out", dest=str(dest), first_line=_first_line(data))
                self.transports.send(data, dest)
            case RegistrationChanged(account, state, error, previous):
                self.metrics.registration_changes.labels(account, state).inc()
                # One line per change; a change that leaves an error behind is a warning.
                level = log.info if error is None else log.warning
                level(
                    "registration " + state,
                    account=account,
                    from_state=previous,
                    to_state=state,
                    last_error=error,
                )
                self.bus.publish(action, self.clock.wall())
            case MessageRejected(source, reason, status):
                self.metrics.parse_errors.labels(str(status) if status else "none").inc()
                self._log_rejection(now, source=str(source), reason=reason, status=status)
            case TransactionTimedOut(tx, request, timer):
                self.metrics.transaction_timeouts.labels(tx.method).inc()
                log.info(
                    "sip transaction timed out",
                    call_id=request.headers.get("Call-ID"),
                    method=tx.method,
                    timer=timer.value if timer else "transport",
                )
            case KeepAliveReceived(source):
                log.debug("keep-alive", source=str(source))
            case CallRefused(source, status, reason):
                self.metrics.calls_refused.labels(str(status)).inc()
                if status != 401:  # a challenge is routine for a trunk; a refusal is not
                    self._log_rejection(now, source=str(source), reason=reason, status=status)
            case TransferRefused(call_id, status, reason):
                # An agent's transfer key that did nothing: the agent hears the
                # failure on the phone; the log says why.
                self.metrics.transfers_refused.labels(str(status)).inc()
                log.warning("phone transfer refused", call_id=call_id, status=status, reason=reason)
            case PasswordGuessing(user, source, failures, blocked_for, unreported):
                # The registrar returns at most one a second.
                log.warning(
                    "sip password guessing: phone registrations blocked",
                    user=user,
                    source=str(source),
                    failures=failures,
                    blocked_for=blocked_for,
                    other_blocks_unreported=unreported,
                )
            case Dropped(source, reason):
                self.dropped += 1
                self.metrics.dropped.labels(reason).inc()
                if reason != GLOBAL:
                    self._log_rejection(now, source=str(source), reason="rate limited", status=None)
                elif (count := self._flood_log.hit(GLOBAL, now)) is not None:
                    # A flood from many addresses: one line when it starts, then
                    # one every 10 s while it lasts, saying how many were dropped.
                    log.warning(
                        "sip flood: untrusted traffic over its global budget dropped",
                        dropped=count,
                        last_source=str(source),
                    )
            case PhoneRegistered(aor, contact, source, expires_in):
                log.info(
                    "phone registered" if expires_in else "phone unregistered",
                    aor=aor,
                    contact=contact,
                    source=source,
                    expires_in=expires_in,
                )
                self.bus.publish(action, self.clock.wall())
            case OfferEnded(outcome=ended) if ended in LEG_FAILURES:
                # Bounded by the agent: refused and unreachable make them
                # not-ready, an error cools them down for busy_cooldown.
                calls_log.warning("agent leg failed", **event_fields(action))
                self.bus.publish(action, self.clock.wall())
            case OutboundEnded(outcome="failed"):
                # A call placed for an agent that could not be placed: the PBX
                # refused it, no route, no answer to the INVITE. One per click.
                calls_log.warning("outbound call failed", **event_fields(action))
                self.bus.publish(action, self.clock.wall())
            case _:
                # One info line per call outcome; the steps on the way (queued,
                # offered, rings, agent states) are many and log at debug, and
                # cost nothing when debug is off.
                name = type(action).__name__
                outcome = name in _OUTCOMES
                if outcome or self._debug:
                    # An event's own call_id, if it has one, names the line's call.
                    emit = calls_log.info if outcome else calls_log.debug
                    emit(_event_name(name), **event_fields(action))
                self.bus.publish(action, self.clock.wall())

    def _log_rejection(self, now: float, **fields: Any) -> None:
        """At most 20 lines per 10 s: a flood of garbage must not flood the log."""
        if self._rejection_log.take(now):
            log.warning("sip message rejected", **fields, **self._rejection_log.written())

    def _rearm(self) -> None:
        """Keep exactly one timer, at the core's next deadline."""
        if self._core is None or self._loop is None:
            return
        when = self.core.next_deadline()
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = None if when is None else self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._run(lambda now: self.core.on_timer(now))


_OUTCOMES = frozenset({
    "CallAnswered", "CallAbandoned", "CallFailed", "CallEnded", "CallTransferred", "CallOverflowed",
    "CallRejected", "CallClosed", "TargetBreached", "OutboundAnswered", "OutboundEnded",
})  # fmt: skip


def _first_line(data: bytes) -> str:
    return data[:120].split(b"\r\n", 1)[0].decode("utf-8", "replace")


@functools.lru_cache(maxsize=256)
def _event_name(name: str) -> str:
    """`CallAnswered` -> "call answered"."""
    return "".join(f" {c.lower()}" if c.isupper() else c for c in name).strip()
