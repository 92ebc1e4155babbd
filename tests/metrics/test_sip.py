"""SIP message counters: by direction, method or response class; bounded labels."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from callcenter.metrics.sip import SipMetrics, message_label
from callcenter.sip.parser import parse_message
from tests.sip.helpers import request


def _value(registry: CollectorRegistry, **labels: str) -> float | None:
    return registry.get_sample_value("callcenter_sip_messages_total", labels)


def test_messages_are_counted_by_method_and_status_class() -> None:
    registry = CollectorRegistry()
    metrics = SipMetrics(registry)
    metrics.count("in", request("INVITE"))
    metrics.count("in", request("INVITE", branch="z9hG4bK-2"))
    metrics.count("out", b"SIP/2.0 180 Ringing\r\n\r\n")
    metrics.count_message("in", parse_message(request("BYE", to_tag="t")))
    invite = request()
    busy = b"SIP/2.0 486 Busy Here\r\n" + invite[invite.index(b"\r\n") + 2 :]
    metrics.count_message("out", parse_message(busy))
    assert _value(registry, direction="in", method="INVITE", status_class="") == 2.0
    assert _value(registry, direction="out", method="", status_class="1xx") == 1.0
    assert _value(registry, direction="in", method="BYE", status_class="") == 1.0
    assert _value(registry, direction="out", method="", status_class="4xx") == 1.0


def test_invented_methods_and_garbage_share_one_label() -> None:
    registry = CollectorRegistry()
    metrics = SipMetrics(registry)
    for n in range(50):
        metrics.count("in", f"FOO{n:02d} sip:x@y SIP/2.0\r\n\r\n".encode())
    metrics.count("in", b"\x00\xff garbage")
    metrics.count("in", b"")
    assert _value(registry, direction="in", method="other", status_class="") == 52.0
    series = [s for m in registry.collect() for s in m.samples if s.name.endswith("_total")]
    assert len([s for s in series if s.name == "callcenter_sip_messages_total"]) == 1
    assert message_label(b"SIP/2.0 xyz\r\n") == ("", "other")
    assert message_label(b"REGISTER sip:x SIP/2.0\r\n") == ("REGISTER", "")
