"""Rate limiting by source address, and the sources that bypass it (pure).

Theory of operation
-------------------
A scanner or a flood of REGISTERs/INVITEs from one address must not eat the
service's CPU (every REGISTER can cost a digest computation) nor crowd out
real calls. The core's gate asks `Throttle.check(source_host, now)` before
the SIP core reads a message, and drops what is refused: silently, since an
answer would only confirm to a scanner that something listens here.

**Token buckets.** Each source has a bucket holding up to ``burst`` tokens
that refills at ``rate`` tokens per second; a request takes one token or is
refused. A new source starts with a full bucket, so a phone that registers
after a restart is never delayed; a source that keeps sending faster than
``rate`` is held to ``rate``.

**Keys.** IPv4 sources are keyed by address. IPv6 sources are keyed by their
/64 (``ipv6_prefix``), because one host usually owns a whole /64 and could
otherwise pick a fresh address, and so a fresh full bucket, per request.
IPv4-mapped IPv6 addresses (from dual-stack sockets) count as the IPv4
address they carry.

**Bounded memory.** At most ``max_sources`` buckets are kept (about 3 MB at
the default 10,000), whatever the number of sources seen; the source seen
least recently is forgotten first. A forgotten source comes back with a full
bucket, which costs at most ``burst`` requests: an attacker who can cycle
through more than ``max_sources`` addresses is beyond what a per-source limit
can stop, and is held by the shared budget below.

**A budget shared by all untrusted sources.** Per-source buckets alone give
an attacker with many addresses (a botnet, or spoofed UDP sources) ``rate``
times the number of addresses. So a request that its source's bucket admits
must also take a token from one more bucket, shared by every untrusted
source (``global_rate`` per second after a first ``global_burst``): whatever
the number of addresses, untrusted traffic into the core is capped. A request
refused by either bucket costs neither (a source whose request the shared
budget refused keeps its own token, so a phone is not held back by its own
address's limit once the flood passes). The caller may exempt a request from
the shared budget (``shared=False``): the gate does so for an agent's phone
at the very address it registered from, so that a flood cannot keep
registered phones from refreshing or answering; such a request is still held
to its own source's rate.

**Phones behind one NAT.** A floor's phones behind one NAT share its address;
keyed by address alone, their keep-alives, answers and refreshes together
would be held to one address's rate. So the gate names the port of an agent's
phone at the address it registered from (``port``), and the phone gets a bucket
of its own, keyed by address and port. Forging a registered phone's address
gains at most that phone's rate, and the answers go to the phone.

Refusals say which limit refused: `PER_SOURCE` or `GLOBAL`, for the metrics
and the log (a source over its own rate is a noisy peer; the shared budget
refusing means a flood from many addresses).

**Trusted sources** (the PBX, a load balancer, localhost) bypass the throttle,
take no bucket and are never charged against the shared budget, so a flood
from elsewhere never delays their calls.

`SuppressedLog` is the companion for the runtime's log: it says when to log a
repeated event for a key (first time, then once per interval with a count),
so a flood of refused packets cannot become a flood of log lines.

Nothing here reads a clock: ``now`` is monotonic seconds from the caller, and
nothing here is SIP's: the desktop's login throttle (agent/login_guard.py)
keys addresses with `source_key` too, so this module is the service's, beside the
cores, which both processes may import (the floor's half may not import the
SIP core). It is compiled with mypyc with the call path (setup.py): the gate
asks it about every message from an untrusted source.
"""

from __future__ import annotations

import functools
import ipaddress
import math
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

__all__ = [
    "GLOBAL",
    "PER_SOURCE",
    "SuppressedLog",
    "Throttle",
    "TrustedSources",
    "parse_ip",
    "source_key",
]

#: Why `Throttle.check` refused a request: its source is over its own rate...
PER_SOURCE: Final = "per-source"
#: ...or all untrusted sources together are over the budget they share.
GLOBAL: Final = "global"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=4096)  # asked for every message received; addresses are immutable
def parse_ip(host: str) -> IPAddress | None:
    """The IP address in ``host`` (``[v6]`` brackets and a ``%zone`` allowed), or None.

    An IPv4-mapped IPv6 address is returned as the IPv4 address it carries.
    """
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    text = text.partition("%")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def source_key(host: str, ipv6_prefix: int = 64) -> str:
    """The throttle key of a source: the IPv4 address, or the IPv6 network of
    ``ipv6_prefix`` bits around the address. Anything that is not an IP
    address is its own key."""
    ip = parse_ip(host)
    if ip is None:
        return host.strip().lower()
    if isinstance(ip, ipaddress.IPv6Address) and ipv6_prefix < 128:
        return str(ipaddress.IPv6Network((ip, ipv6_prefix), strict=False))
    return str(ip)


class TrustedSources:
    """A set of IP networks from configuration strings.

    Entries are addresses (``"127.0.0.1"``, ``"::1"``) or networks
    (``"10.0.0.0/8"``). Host names are refused, since resolving them here
    would be I/O, and so is a network with host bits set (``"10.0.0.1/8"``),
    which is more likely a typo than a wish to trust the whole /8.
    """

    __slots__ = ("_networks",)

    def __init__(self, entries: Iterable[str] = ()) -> None:
        """Raises ValueError naming the first entry that is not an address or network."""
        networks: list[IPNetwork] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=True))
            except ValueError as exc:
                raise ValueError(
                    f"trusted source {entry!r} is not an IP address or network "
                    f"such as 10.0.0.0/8 ({exc})"
                ) from None
        self._networks = tuple(networks)

    @property
    def networks(self) -> tuple[IPNetwork, ...]:
        return self._networks

    def is_trusted(self, host: str) -> bool:
        """True if ``host`` is an IP address inside one of the networks.

        Anything else, a host name included, is not trusted.
        """
        ip = parse_ip(host)
        return ip is not None and any(ip in network for network in self._networks)

    def __contains__(self, host: object) -> bool:
        return isinstance(host, str) and self.is_trusted(host)

    def __len__(self) -> int:
        return len(self._networks)

    def __repr__(self) -> str:
        return f"TrustedSources({[str(n) for n in self._networks]!r})"


@dataclass(slots=True)
class _Bucket:
    tokens: float
    last: float

    def refill(self, now: float, rate: float, burst: float) -> None:
        elapsed = now - self.last
        if elapsed > 0:  # time never runs backwards here, NaN included
            self.tokens = min(burst, self.tokens + elapsed * rate)
            self.last = now


class Throttle:
    """Per-source token buckets and a budget all untrusted sources share;
    see the module docstring."""

    __slots__ = (
        "_buckets",
        "_global",
        "_global_burst",
        "_global_rate",
        "_ipv6_prefix",
        "_trusted",
        "burst",
        "denied",
        "denied_global",
        "global_burst",
        "global_rate",
        "max_sources",
        "rate",
    )

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        global_rate: float | None = None,
        global_burst: int | None = None,
        max_sources: int = 10000,
        trusted: TrustedSources | None = None,
        ipv6_prefix: int = 64,
    ) -> None:
        """``rate`` requests per second, after a first ``burst``, per source;
        with ``global_rate`` (and ``global_burst``), that many in all from
        untrusted sources. Without it there is no shared budget."""
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError("rate must be a positive number of requests per second")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        if (global_rate is None) != (global_burst is None):
            raise ValueError("global_rate and global_burst go together")
        if global_rate is not None and not (math.isfinite(global_rate) and global_rate > 0):
            raise ValueError("global_rate must be a positive number of requests per second")
        if global_burst is not None and global_burst < 1:
            raise ValueError("global_burst must be at least 1")
        if max_sources < 1:
            raise ValueError("max_sources must be at least 1")
        if not 0 <= ipv6_prefix <= 128:
            raise ValueError("ipv6_prefix must be between 0 and 128")
        self.rate = rate
        self.burst = burst
        self.global_rate = global_rate
        self.global_burst = global_burst
        self.max_sources = max_sources
        self._trusted = trusted or TrustedSources()
        self._ipv6_prefix = ipv6_prefix
        # Least recently seen first.
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        # Starts full, as a new source's bucket does: a floor of phones
        # registering at start-up is let in at once.
        self._global: _Bucket | None = (
            None if global_burst is None else _Bucket(float(global_burst), -math.inf)
        )
        self._global_rate = 0.0 if global_rate is None else global_rate
        self._global_burst = 0.0 if global_burst is None else float(global_burst)
        #: How many requests were refused in all, and how many of them by the
        #: shared budget (for tests and status views; the runtime counts
        #: `check`'s answers).
        self.denied = 0
        self.denied_global = 0

    def __repr__(self) -> str:
        shared = "" if self.global_rate is None else f", global_rate={self.global_rate}"
        return (
            f"Throttle(rate={self.rate}, burst={self.burst}{shared}, sources={len(self._buckets)})"
        )

    def __len__(self) -> int:
        """How many sources have a bucket."""
        return len(self._buckets)

    def allow(self, key: str, now: float) -> bool:
        """`check` as a yes or no: True means handle the request."""
        return self.check(key, now) is None

    def check(
        self, key: str, now: float, *, shared: bool = True, port: int | None = None
    ) -> str | None:
        """Take a token for the source ``key`` (its IP address) at ``now``,
        and one from the shared budget unless ``shared`` is False. With
        ``port``, the source's bucket is its address and port's own.

        None means handle the request; `PER_SOURCE` or `GLOBAL` means drop it,
        and says which limit refused. Trusted sources are always allowed and
        never counted.
        """
        if self._trusted.is_trusted(key):
            return None
        bucket_key = self._key(key, port)
        bucket = self._buckets.get(bucket_key)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
            self._buckets[bucket_key] = bucket
            if len(self._buckets) > self.max_sources:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(bucket_key)
            bucket.refill(now, self.rate, float(self.burst))
        if bucket.tokens < 1.0:
            self.denied += 1
            return PER_SOURCE
        budget = self._global
        if shared and budget is not None:
            budget.refill(now, self._global_rate, self._global_burst)
            if budget.tokens < 1.0:
                self.denied += 1
                self.denied_global += 1
                return GLOBAL
            budget.tokens -= 1.0
        bucket.tokens -= 1.0
        return None

    def _key(self, key: str, port: int | None) -> str:
        if port is None:
            return source_key(key, self._ipv6_prefix)
        return f"{source_key(key, 128)}#{port}"

    def tokens(self, key: str, now: float, port: int | None = None) -> float:
        """Tokens the source would have at ``now`` (for tests and status views)."""
        bucket = self._buckets.get(self._key(key, port))
        if bucket is None:
            return float(self.burst)
        elapsed = max(0.0, now - bucket.last)
        return min(float(self.burst), bucket.tokens + elapsed * self.rate)

    def global_tokens(self, now: float) -> float | None:
        """Tokens the shared budget would have at ``now``, or None without one."""
        budget = self._global
        if budget is None:
            return None
        elapsed = max(0.0, now - budget.last)
        return min(self._global_burst, budget.tokens + elapsed * self._global_rate)


@dataclass(slots=True)
class _Seen:
    #: When the key was last logged, and occurrences since then.
    logged_at: float
    count: int


class SuppressedLog:
    """When to log an event that may repeat thousands of times per key.

    `hit` says to log the first occurrence for a key, then at most once per
    ``interval`` seconds, and returns how many occurrences that log line
    stands for. At most ``max_keys`` keys are remembered (least recently seen
    forgotten first; a forgotten key is logged afresh on its next hit).
    """

    __slots__ = ("_keys", "interval", "max_keys")

    def __init__(self, interval: float, *, max_keys: int = 1024) -> None:
        if not (math.isfinite(interval) and interval > 0):
            raise ValueError("interval must be a positive number of seconds")
        if max_keys < 1:
            raise ValueError("max_keys must be at least 1")
        self.interval = interval
        self.max_keys = max_keys
        self._keys: OrderedDict[str, _Seen] = OrderedDict()

    def hit(self, key: str, now: float) -> int | None:
        """Count one occurrence; the number to report if it is time to log, else None."""
        entry = self._keys.get(key)
        if entry is None:
            self._keys[key] = _Seen(now, 0)
            if len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
            return 1
        self._keys.move_to_end(key)
        entry.count += 1
        if now - entry.logged_at >= self.interval:
            count, entry.logged_at, entry.count = entry.count, now, 0
            return count
        return None
