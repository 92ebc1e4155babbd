"""Per-source rate limiting, the budget untrusted sources share, trusted sources and log
suppression (pure, explicit `now`)."""

from __future__ import annotations

import pytest

from callcenter.throttle import (
    GLOBAL,
    PER_SOURCE,
    SuppressedLog,
    Throttle,
    TrustedSources,
    parse_ip,
    source_key,
)


def allowed(throttle: Throttle, key: str, now: float, times: int) -> int:
    return sum(throttle.allow(key, now) for _ in range(times))


# --------------------------------------------------------------------------
# Throttle
# --------------------------------------------------------------------------


def test_allows_a_burst_then_refuses() -> None:
    throttle = Throttle(rate=2.0, burst=5)
    assert allowed(throttle, "192.0.2.1", 0.0, 10) == 5
    assert throttle.denied == 5


def test_refills_at_rate_per_second_up_to_burst() -> None:
    throttle = Throttle(rate=2.0, burst=5)
    allowed(throttle, "192.0.2.1", 0.0, 5)
    assert not throttle.allow("192.0.2.1", 0.25)  # half a token
    assert throttle.allow("192.0.2.1", 0.5)  # one token by now
    assert not throttle.allow("192.0.2.1", 0.5)
    # A sustained sender gets `rate` per second.
    got = sum(allowed(throttle, "192.0.2.1", 0.5 + t / 10, 3) for t in range(1, 101))
    assert got == 20  # ten seconds at 2/s
    # Idle long enough, the bucket is full again, but never fuller than burst.
    assert throttle.tokens("192.0.2.1", 1000.0) == 5.0
    assert allowed(throttle, "192.0.2.1", 1000.0, 10) == 5


def test_sources_are_independent() -> None:
    throttle = Throttle(rate=1.0, burst=2)
    assert allowed(throttle, "192.0.2.1", 0.0, 5) == 2
    assert allowed(throttle, "192.0.2.2", 0.0, 5) == 2
    assert len(throttle) == 2


def test_time_going_backwards_adds_no_tokens() -> None:
    throttle = Throttle(rate=1.0, burst=1)
    assert throttle.allow("192.0.2.1", 100.0)
    assert not throttle.allow("192.0.2.1", 50.0)
    assert not throttle.allow("192.0.2.1", float("nan"))
    assert throttle.allow("192.0.2.1", 101.0)


def test_memory_is_bounded_evicting_the_least_recently_seen() -> None:
    throttle = Throttle(rate=1.0, burst=1, max_sources=3)
    for host in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        assert throttle.allow(host, 0.0)
    assert not throttle.allow("10.0.0.1", 0.0)  # seen again: now the most recent
    assert throttle.allow("10.0.0.4", 0.0)  # evicts 10.0.0.2, the least recent
    assert len(throttle) == 3
    assert not throttle.allow("10.0.0.1", 0.0)  # still tracked, still empty
    assert throttle.allow("10.0.0.2", 0.0)  # forgotten, so a fresh bucket
    for i in range(1000):
        throttle.allow(f"10.1.{i // 256}.{i % 256}", 1.0)
    assert len(throttle) == 3


def test_trusted_sources_bypass_the_throttle_and_take_no_bucket() -> None:
    trusted = TrustedSources(["127.0.0.1", "10.0.0.0/8", "::1"])
    throttle = Throttle(rate=1.0, burst=1, trusted=trusted)
    assert allowed(throttle, "10.20.30.40", 0.0, 1000) == 1000
    assert allowed(throttle, "::1", 0.0, 10) == 10
    assert len(throttle) == 0 and throttle.denied == 0
    # A flood from outside is held back, and the PBX is not affected by it.
    assert allowed(throttle, "203.0.113.9", 0.0, 1000) == 1
    assert throttle.allow("10.0.0.5", 0.0)


def test_ipv6_sources_share_a_bucket_per_64() -> None:
    throttle = Throttle(rate=1.0, burst=2)
    assert throttle.allow("2001:db8:1:2::1", 0.0)
    assert throttle.allow("[2001:db8:1:2::ffff]", 0.0)
    assert not throttle.allow("2001:db8:1:2:aaaa::1", 0.0)
    assert throttle.allow("2001:db8:1:3::1", 0.0)  # another /64
    per_address = Throttle(rate=1.0, burst=1, ipv6_prefix=128)
    assert per_address.allow("2001:db8::1", 0.0)
    assert per_address.allow("2001:db8::2", 0.0)


def test_ipv4_mapped_ipv6_counts_as_the_ipv4_address() -> None:
    throttle = Throttle(rate=1.0, burst=1)
    assert throttle.allow("::ffff:192.0.2.1", 0.0)
    assert not throttle.allow("192.0.2.1", 0.0)


# --------------------------------------------------------------------------
# The budget all untrusted sources share
# --------------------------------------------------------------------------


def many(n: int) -> list[str]:
    """`n` distinct IPv4 sources."""
    return [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}" for i in range(n)]


def test_many_sources_together_get_the_global_budget_not_rate_times_sources() -> None:
    """Issue 16, item 8: per-source buckets alone let 1,000 addresses send 1,000
    times one address's rate."""
    throttle = Throttle(rate=1.0, burst=5, global_rate=10.0, global_burst=50)
    sources = many(1000)
    # Each source within its own burst; together, the global burst.
    assert sum(allowed(throttle, s, 0.0, 3) for s in sources) == 50
    assert throttle.denied == throttle.denied_global == 2950
    # Sustained: the global rate, however many sources share it.
    got = sum(throttle.allow(s, float(t)) for t in range(1, 11) for s in sources[:20])
    assert got == 100  # ten seconds at 10/s
    assert throttle.global_tokens(10.0) == 0.0


def test_check_names_the_limit_that_refused() -> None:
    throttle = Throttle(rate=1.0, burst=2, global_rate=1.0, global_burst=3)
    assert [throttle.check("192.0.2.1", 0.0) for _ in range(3)] == [None, None, PER_SOURCE]
    assert [throttle.check("192.0.2.2", 0.0) for _ in range(2)] == [None, GLOBAL]
    assert (throttle.denied, throttle.denied_global) == (2, 1)


def test_a_refusal_costs_neither_bucket() -> None:
    throttle = Throttle(rate=1.0, burst=5, global_rate=1.0, global_burst=10)
    # One noisy source spends its own burst, not the others' budget.
    assert allowed(throttle, "192.0.2.1", 0.0, 100) == 5
    assert throttle.global_tokens(0.0) == 5.0
    # The others drain the budget; then a phone's request refused by it
    # leaves the phone its own tokens for when the flood passes.
    assert sum(throttle.allow(s, 0.0) for s in many(5)) == 5
    assert throttle.check("192.0.2.9", 0.0) == GLOBAL
    assert throttle.tokens("192.0.2.9", 0.0) == 5.0
    assert throttle.check("192.0.2.9", 1.0) is None  # one global token back


def test_a_request_exempt_from_the_budget_is_held_to_its_own_rate() -> None:
    """The gate exempts an agent's phone at its registered address: a flood that
    spends the budget cannot keep it from refreshing, nor can a forged copy of
    its address send more than one address's rate."""
    throttle = Throttle(rate=1.0, burst=3, global_rate=1.0, global_burst=10)
    sum(throttle.allow(s, 0.0) for s in many(100))
    assert throttle.check("192.0.2.7", 0.0) == GLOBAL
    assert [throttle.check("192.0.2.7", 0.0, shared=False) for _ in range(4)] == [
        None, None, None, PER_SOURCE,
    ]  # fmt: skip
    assert throttle.global_tokens(0.0) == 0.0


def test_a_port_gives_a_source_a_bucket_of_its_own() -> None:
    """The gate names the port of an agent's phone at its registered address:
    phones behind one NAT share its address, not their ports."""
    throttle = Throttle(rate=1.0, burst=2, trusted=TrustedSources(["10.0.0.0/8"]))
    assert allowed(throttle, "192.0.2.1", 0.0, 5) == 2  # the NAT's address: spent
    assert [throttle.check("192.0.2.1", 0.0, port=5060) for _ in range(3)] == [
        None, None, PER_SOURCE,
    ]  # fmt: skip
    assert throttle.check("192.0.2.1", 0.0, port=5062) is None
    assert throttle.tokens("192.0.2.1", 0.0, port=5062) == 1.0
    assert throttle.tokens("192.0.2.1", 0.0) == 0.0
    # IPv6: the address itself with its port, not its /64.
    assert throttle.check("2001:db8::1", 0.0, port=5060) is None
    assert throttle.tokens("2001:db8::2", 0.0, port=5060) == 2.0
    assert throttle.check("10.0.0.1", 0.0, port=5060) is None  # trusted: no bucket
    assert len(throttle) == 4


def test_trusted_sources_are_never_charged_to_the_budget() -> None:
    throttle = Throttle(
        rate=1.0, burst=1, global_rate=1.0, global_burst=2, trusted=TrustedSources(["10.0.0.0/8"])
    )
    assert allowed(throttle, "10.0.0.1", 0.0, 1000) == 1000
    assert throttle.global_tokens(0.0) == 2.0
    assert sum(throttle.allow(s, 0.0) for s in ("192.0.2.1", "192.0.2.2", "192.0.2.3")) == 2
    assert allowed(throttle, "10.0.0.1", 0.0, 10) == 10  # the budget spent: still served


def test_without_a_global_budget_sources_are_only_held_to_their_own_rate() -> None:
    throttle = Throttle(rate=1.0, burst=2)
    assert sum(allowed(throttle, s, 0.0, 5) for s in many(100)) == 200
    assert throttle.global_tokens(0.0) is None and throttle.denied_global == 0


def test_memory_stays_bounded_and_traffic_capped_beyond_max_sources() -> None:
    """Sources cycling through more addresses than are remembered each come back
    with a full bucket; the table stays at `max_sources` and the budget holds."""
    throttle = Throttle(rate=1.0, burst=5, global_rate=100.0, global_burst=100, max_sources=50)
    sources = many(20_000)
    got = 0
    for second in range(5):
        got += sum(throttle.allow(s, second + i / 20_000) for i, s in enumerate(sources))
        assert len(throttle) == 50
    assert got <= 100 + 5 * 100


@pytest.mark.parametrize(
    "kw",
    [
        {"rate": 0.0, "burst": 1},
        {"rate": -1.0, "burst": 1},
        {"rate": float("inf"), "burst": 1},
        {"rate": float("nan"), "burst": 1},
        {"rate": 1.0, "burst": 0},
        {"rate": 1.0, "burst": 1, "max_sources": 0},
        {"rate": 1.0, "burst": 1, "ipv6_prefix": 129},
        {"rate": 1.0, "burst": 1, "global_rate": 1.0},
        {"rate": 1.0, "burst": 1, "global_burst": 1},
        {"rate": 1.0, "burst": 1, "global_rate": 0.0, "global_burst": 1},
        {"rate": 1.0, "burst": 1, "global_rate": float("inf"), "global_burst": 1},
        {"rate": 1.0, "burst": 1, "global_rate": 1.0, "global_burst": 0},
    ],
)
def test_bad_throttle_settings_are_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Throttle(**kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# Keys and addresses
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        (" 192.0.2.1 ", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("[2001:DB8::1]", "2001:db8::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("Not-An-IP", "not-an-ip"),
    ],
)
def test_source_key(host: str, key: str) -> None:
    assert source_key(host) == key


def test_parse_ip_is_total() -> None:
    assert parse_ip("") is None
    assert parse_ip("[") is None
    assert parse_ip("999.1.1.1") is None
    assert str(parse_ip("[::1]")) == "::1"


# --------------------------------------------------------------------------
# TrustedSources
# --------------------------------------------------------------------------


def test_trusted_sources_match_addresses_and_networks() -> None:
    trusted = TrustedSources(["127.0.0.1", "10.0.0.0/8", "::1", " 2001:db8::/32 "])
    assert len(trusted) == 4
    for host in ("127.0.0.1", "10.255.0.1", "::1", "[::1]", "2001:db8:ffff::1", "::ffff:10.1.1.1"):
        assert trusted.is_trusted(host), host
        assert host in trusted
    for host in ("127.0.0.2", "11.0.0.1", "::2", "localhost", "", "2001:db9::1"):
        assert not trusted.is_trusted(host), host
    assert 42 not in trusted
    assert "10.0.0.0/8" in repr(trusted)


def test_no_trusted_sources_trusts_nothing() -> None:
    assert not TrustedSources().is_trusted("127.0.0.1")


@pytest.mark.parametrize("entry", ["localhost", "", "10.0.0.1/8", "10.0.0.0/33", "1.2.3", "::1/"])
def test_invalid_trusted_source_names_the_entry(entry: str) -> None:
    with pytest.raises(ValueError) as info:
        TrustedSources(["127.0.0.1", entry])
    assert repr(entry) in str(info.value)


# --------------------------------------------------------------------------
# SuppressedLog
# --------------------------------------------------------------------------


def test_suppressed_log_reports_first_then_once_per_interval_with_a_count() -> None:
    log = SuppressedLog(interval=60.0)
    assert log.hit("203.0.113.9", 0.0) == 1
    assert [log.hit("203.0.113.9", t) for t in (1.0, 2.0, 59.0)] == [None, None, None]
    assert log.hit("203.0.113.9", 60.0) == 4  # three suppressed plus this one
    assert log.hit("203.0.113.9", 61.0) is None
    assert log.hit("198.51.100.1", 61.0) == 1  # keys are independent


def test_suppressed_log_is_bounded() -> None:
    log = SuppressedLog(interval=60.0, max_keys=2)
    assert log.hit("a", 0.0) == 1
    assert log.hit("b", 0.0) == 1
    assert log.hit("a", 1.0) is None  # "a" is now the most recent
    assert log.hit("c", 1.0) == 1  # forgets "b"
    assert log.hit("b", 2.0) == 1  # logged afresh, and "a" is forgotten in turn
    assert log.hit("a", 2.0) == 1


@pytest.mark.parametrize("kw", [{"interval": 0.0}, {"interval": 1.0, "max_keys": 0}])
def test_bad_suppressed_log_settings_are_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SuppressedLog(**kw)  # type: ignore[arg-type]
