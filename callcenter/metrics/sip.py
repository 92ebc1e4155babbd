"""SIP metrics: messages, parse errors, drops, transaction timeouts, registration state.

Counters are incremented by the runtime as messages pass; the registration
state is read from the user agent at scrape time by a custom collector, so
the gauge can never disagree with /healthz.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Final

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callcenter.health import PhoneReach
from callcenter.sip.aio import SipTransports
from callcenter.sip.message import Message, Request, Response
from callcenter.sip.registration import RegState
from callcenter.sip.ua import RegistrationStatus

__all__ = ["SipMetrics", "message_label"]


#: Methods counted by name; anything else is "other", so a peer inventing
#: methods cannot add label values (series) without bound.
KNOWN_METHODS = frozenset({
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "PRACK", "SUBSCRIBE", "NOTIFY",
    "PUBLISH", "INFO", "REFER", "MESSAGE", "UPDATE",
})  # fmt: skip


def message_label(data: bytes) -> tuple[str, str]:
    """(method, status class) of a serialised message, from its first line only.

    A request gives ("INVITE", ""), a response to it ("", "2xx"); anything
    unreadable gives ("other", "").
    """
    first = data[:64].split(b" ", 2)
    if len(first) >= 2 and first[0].upper().startswith(b"SIP/"):
        code = first[1][:1]
        return "", (code.decode() + "xx") if code.isdigit() else "other"
    method = first[0].decode("ascii", "replace") if first else ""
    return (method if method in KNOWN_METHODS else "other"), ""


class SipMetrics:
    """The SIP metric families, registered on an injected registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._messages = _MessageCounts()
        registry.register(self._messages)
        self.parse_errors = Counter(
            "callcenter_sip_parse_errors",
            "Malformed or oversized messages rejected, by the status answered (or none).",
            ["status"],
            registry=registry,
        )
        self.transaction_timeouts = Counter(
            "callcenter_sip_transaction_timeouts",
            "Transactions that timed out (timer B, F or H) or whose transport failed.",
            ["method"],
            registry=registry,
        )
        self.calls_refused = Counter(
            "callcenter_sip_calls_refused",
            "INVITEs not allowed to place a call: 403 (untrusted source, failed trunk "
            "authentication) or 401 (a trunk challenged to authenticate).",
            ["status"],
            registry=registry,
        )
        self.transfers_refused = Counter(
            "callcenter_sip_transfers_refused",
            "Transfers asked by an agent's phone (REFER) and refused, by the status "
            "answered or given in the final NOTIFY: 400 (no readable Refer-To), 403, "
            "404 (no such agent or queue), 416, 480 (the agent cannot take it now), "
            "491 (a transfer already in progress), 603 (attended, or from the caller).",
            ["status"],
            registry=registry,
        )
        self.dropped = Counter(
            "callcenter_sip_dropped",
            "Messages from untrusted sources dropped unread by the flood throttle: over "
            "their own address's rate (per-source) or over the budget all untrusted "
            "sources share (global).",
            ["reason"],
            registry=registry,
        )
        self.registration_changes = Counter(
            "callcenter_sip_registration_changes",
            "Registration state changes, by account and new state.",
            ["account", "state"],
            registry=registry,
        )

    def count(self, direction: str, data: bytes) -> None:
        method, status_class = message_label(data)
        self._messages.add((direction, method, status_class))

    def count_message(self, direction: str, msg: Message) -> None:
        if isinstance(msg, Response):
            self._messages.add((direction, "", f"{msg.status // 100}xx"))
        elif isinstance(msg, Request):
            method = msg.method if msg.method in KNOWN_METHODS else "other"
            self._messages.add((direction, method, ""))

    def register_state_collector(
        self,
        registry: CollectorRegistry,
        source: Callable[[], list[RegistrationStatus]],
        wrap: Callable[[Collector], Collector] = lambda c: c,
    ) -> None:
        registry.register(wrap(_RegistrationCollector(source)))

    def register_phone_collector(
        self,
        registry: CollectorRegistry,
        source: Callable[[], PhoneReach | None],
        wrap: Callable[[Collector], Collector] = lambda c: c,
    ) -> None:
        registry.register(wrap(_PhoneCollector(source)))

    def register_connection_collector(
        self,
        registry: CollectorRegistry,
        transports: Callable[[], SipTransports],
        wrap: Callable[[Collector], Collector] = lambda c: c,
    ) -> None:
        registry.register(wrap(_ConnectionCollector(transports)))


class _PhoneCollector(Collector):
    """The agents by whether their phone is registered with the service (standalone
    mode), and whether they are logged in: what /healthz says, as a gauge."""

    def __init__(self, source: Callable[[], PhoneReach | None]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        reach = self._source()
        if reach is None:
            return
        family = GaugeMetricFamily(
            "callcenter_agent_phones",
            "Agents by whether their phone is registered with the service's registrar "
            "(standalone mode) and whether they are logged in.",
            labels=["registered", "logged_in"],
        )
        out = reach.logged_in - reach.logged_in_registered
        family.add_metric(["true", "true"], reach.logged_in_registered)
        family.add_metric(["false", "true"], out)
        family.add_metric(["true", "false"], reach.registered - reach.logged_in_registered)
        family.add_metric(
            ["false", "false"], reach.agents - reach.registered - out
        )
        yield family


class _ConnectionCollector(Collector):
    """TCP and TLS connections open, and peers' closed by the limits (sip/aio.py)."""

    def __init__(self, transports: Callable[[], SipTransports]) -> None:
        self._transports = transports

    def collect(self) -> Iterable[Metric]:
        transports = self._transports()
        open_ = GaugeMetricFamily(
            "callcenter_sip_connections", "SIP stream connections (TCP, TLS) open now."
        )
        open_.add_metric([], transports.connection_count)
        refused = CounterMetricFamily(
            "callcenter_sip_connections_refused",
            "Peers' SIP stream connections closed by the limits: at capacity, too many "
            "from one address, silent after opening, or idle.",
            labels=["reason"],
        )
        for reason in ("capacity", "per-source", "silent", "idle"):
            refused.add_metric([reason], transports.refused.get(reason, 0))
        yield open_
        yield refused


class _MessageCounts(Collector):
    """`callcenter_sip_messages_total`, counted in plain integers.

    A message counts on every datagram (a dozen per call, thousands a second),
    so the count is a dict entry rather than a prometheus_client child, whose
    `inc` takes a lock each time; the family is built at scrape time. Counted on
    the event loop only; the copy a scrape reads is taken in one step. The
    label values are few: a direction, a method or "other", a class."""

    NAME: Final = "callcenter_sip_messages"
    DOC: Final = "SIP messages sent and received, by direction, request method or response class."

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], int] = {}

    def add(self, key: tuple[str, str, str]) -> None:
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1

    def describe(self) -> Iterable[Metric]:
        yield CounterMetricFamily(self.NAME, self.DOC, labels=_MESSAGE_LABELS)

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self.NAME, self.DOC, labels=_MESSAGE_LABELS)
        for key, count in dict(self.counts).items():
            family.add_metric(key, count)
        yield family


_MESSAGE_LABELS: Final = ("direction", "method", "status_class")


class _RegistrationCollector(Collector):
    def __init__(self, source: Callable[[], list[RegistrationStatus]]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "callcenter_sip_registration_up",
            "1 when the account is registered with the PBX, else 0.",
            labels=["account"],
        )
        state = GaugeMetricFamily(
            "callcenter_sip_registration_state",
            "The registration's current state (1 for the current one).",
            labels=["account", "state"],
        )
        expires = GaugeMetricFamily(
            "callcenter_sip_registration_expires_seconds",
            "Seconds until the current binding expires.",
            labels=["account"],
        )
        for status in self._source():
            up.add_metric([status.account], 1.0 if status.state is RegState.REGISTERED else 0.0)
            for st in RegState:
                state.add_metric([status.account, st.value], 1.0 if st is status.state else 0.0)
            if status.expires_in is not None:
                expires.add_metric([status.account], status.expires_in)
        yield up
        yield state
        yield expires
