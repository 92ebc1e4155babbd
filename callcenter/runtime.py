"""The runtime: feeds the pure SIP core from the sockets and executes its actions.

The pattern is aioquic's protocol adapter. Every input (a datagram, a framed
stream message, a closed connection, a timer) is handed to the `UserAgent`
with `loop.time()` as `now`; the returned actions are executed in order
(`Send` goes to the transports, events are logged and counted); then ONE timer
is re-armed at the core's next deadline. An early or spurious timer fire is
harmless: the core only does what is due.

A per-input guard catches anything the core raises, logs it with the Call-ID
and counts it, so a bug triggered by one message can never stop the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import structlog

from callcenter.metrics.sip import SipMetrics
from callcenter.sip.aio import SipTransports, TransportConfig
from callcenter.sip.errors import ParseError
from callcenter.sip.events import KeepAliveReceived, MessageRejected, Send, TransactionTimedOut
from callcenter.sip.message import Address, Message, Transport
from callcenter.sip.parser import KeepAlive, peek_call_id
from callcenter.sip.ua import (
    CallEnded,
    CallRinging,
    RegistrationChanged,
    RegistrationStatus,
    UaAction,
    UserAgent,
)

__all__ = ["SipRuntime"]

log = structlog.get_logger("callcenter.sip")

UaFactory = Callable[[dict[Transport, tuple[str, int]]], UserAgent]


class SipRuntime:
    """Owns the transports and the user agent; implements `SipSink`."""

    def __init__(
        self, transport_config: TransportConfig, ua_factory: UaFactory, metrics: SipMetrics
    ) -> None:
        self._transport_config = transport_config
        self._ua_factory = ua_factory
        self.metrics = metrics
        self.transports = SipTransports(transport_config, self)
        self._ua: UserAgent | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rejections_logged = 0
        self._rejection_window = 0.0

    @property
    def ua(self) -> UserAgent:
        if self._ua is None:
            raise RuntimeError("SIP runtime not started")
        return self._ua

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the sockets, build the core with the bound addresses, register."""
        self._loop = asyncio.get_running_loop()
        await self.transports.start()
        self._ua = self._ua_factory(dict(self.transports.bound))
        log.info(
            "sip listening",
            **{t.lower(): f"{h}:{p}" for t, (h, p) in self.transports.bound.items()},
        )
        self._run(lambda now: self.ua.start(now))

    async def stop(self, timeout: float = 3.0) -> None:
        """De-register (bounded by `timeout`), then close every socket."""
        if self._ua is not None:
            self._run(lambda now: self.ua.stop(now))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while not self.ua.stopping_done and loop.time() < deadline:
                await asyncio.sleep(0.02)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        await self.transports.close()

    def registration_status(self) -> list[RegistrationStatus]:
        if self._ua is None or self._loop is None:
            return []
        return self._ua.registration_status(self._loop.time())

    # -- SipSink --------------------------------------------------------------------------

    def datagram_received(self, data: bytes, source: Address) -> None:
        self.metrics.count("in", data)
        with _call_context(peek_call_id(data)):
            self._run(lambda now: self.ua.receive(data, source, now))

    def stream_item_received(self, item: Message | KeepAlive | ParseError, source: Address) -> None:
        call_id = None
        if isinstance(item, Message):
            self.metrics.count_message("in", item)
            call_id = item.headers.get("Call-ID")
        with _call_context(call_id):
            self._run(lambda now: self.ua.receive_stream_item(item, source, now))

    def connection_lost(self, peer: Address) -> None:
        if self._ua is not None:
            self._run(lambda now: self.ua.transport_error(peer, now))

    # -- the loop -------------------------------------------------------------------------

    def _run(self, step: Callable[[float], list[UaAction]]) -> None:
        assert self._loop is not None
        now = self._loop.time()
        try:
            actions = step(now)
        except Exception:  # the per-input guard: log, count, keep serving
            log.exception("sip core failed on input")
            self.metrics.parse_errors.labels("internal").inc()
            actions = []
        for action in actions:
            try:
                self._execute(action, now)
            except Exception:
                log.exception("sip action failed", action=type(action).__name__)
        self._rearm()

    def _execute(self, action: UaAction, now: float) -> None:
        match action:
            case Send(data, dest):
                self.metrics.count("out", data)
                if log.is_enabled_for(logging.DEBUG):
                    log.debug("sip out", dest=str(dest), first_line=_first_line(data))
                self.transports.send(data, dest)
            case RegistrationChanged(account, state, error):
                self.metrics.registration_changes.labels(account, state.value).inc()
                level = log.info if error is None else log.warning
                level("registration " + state.value, account=account, error=error)
            case CallRinging(call_id, caller, called, source):
                with _call_context(call_id):
                    log.info("call ringing", caller=caller, called=called, source=str(source))
            case CallEnded(call_id, cause, ring_seconds):
                with _call_context(call_id):
                    log.info("call ended", cause=cause, ring_seconds=round(ring_seconds, 3))
            case MessageRejected(source, reason, status):
                self.metrics.parse_errors.labels(str(status) if status else "none").inc()
                self._log_rejection(now, source=str(source), reason=reason, status=status)
            case TransactionTimedOut(tx, request, timer):
                self.metrics.transaction_timeouts.labels(tx.method).inc()
                with _call_context(request.headers.get("Call-ID")):
                    log.info(
                        "sip transaction timed out",
                        method=tx.method,
                        timer=timer.value if timer else "transport",
                    )
            case KeepAliveReceived(source):
                log.debug("keep-alive", source=str(source))

    def _log_rejection(self, now: float, **fields: Any) -> None:
        """At most 20 lines per 10 s: a flood of garbage must not flood the log."""
        if now - self._rejection_window > 10.0:
            if self._rejections_logged > 20:
                log.warning("rejections suppressed", count=self._rejections_logged - 20)
            self._rejection_window, self._rejections_logged = now, 0
        self._rejections_logged += 1
        if self._rejections_logged <= 20:
            log.warning("sip message rejected", **fields)

    def _rearm(self) -> None:
        """Keep exactly one timer, at the core's next deadline."""
        if self._ua is None or self._loop is None:
            return
        when = self.ua.next_deadline()
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = None if when is None else self._loop.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        self._run(lambda now: self.ua.on_timer(now))


@contextlib.contextmanager
def _call_context(call_id: str | None) -> Iterator[None]:
    """Every log line written while handling a message carries its Call-ID."""
    if call_id is None:
        yield
        return
    with structlog.contextvars.bound_contextvars(call_id=call_id):
        yield


def _first_line(data: bytes) -> str:
    return data[:120].split(b"\r\n", 1)[0].decode("utf-8", "replace")
