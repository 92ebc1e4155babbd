"""Who may try a desktop password now, and who must wait (pure: ``now`` comes from the caller).

Theory of operation
-------------------
A guesser must be slowed, and the real user must not be locked out by the
guesser's failures (issue 16, items 2 and 4). The rule follows the OWASP
Authentication Cheat Sheet (failures counted per account, exponential
delays rather than a fixed lockout, and its warning that a lockout must not
become a way to lock others out) and what Microsoft's "smart lockout" does
with it: an address from which the account has logged in before is treated
apart from the addresses it has not. Four parts:

- **Per account and address** (the pair): five failures are free, then each
  further attempt is heard only after a delay that doubles with each
  failure, from 1 s up to 15 min (`Backoff`). A success clears the pair.
  Five wrong passwords for an agent from one address slow that address for
  that agent, nobody else: the agent logs in from another address at once,
  and made-up ids tried from a NAT address are pairs of their own, so they
  slow no real agent behind it.
- **Per account, from addresses it has not logged in from** (unfamiliar):
  ten failures are free, then the same doubling delay, so a guesser who
  spreads over many addresses is slowed per account too (the Cheat Sheet's
  account counter). An address where the account has logged in since the
  start ("familiar") is never held up by it.
- **A global budget** of failures from unfamiliar pairs: 100, refilled at one
  every 2 s (`Budget`), whatever the account or address, bounding what a
  botnet can try in all. Familiar pairs do not spend it and are not refused
  when it is spent.
- **Counted before the hash.** An attempt is counted as a failure when it is
  admitted (`begin`), before its password is hashed, and taken back if it
  succeeds (`succeeded`): 300 guesses sent at once for one account are 5
  admitted and 295 refused, not 300 checked.

The decisions depend on the id as typed and never on whether it exists, so
a refusal (and its delay) says nothing about which ids are real. Memory is
bounded: each table keeps `KEYS_KEPT` keys, least recently used forgotten
first, and a pair's failures are forgotten a day after its last one.
"""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from callcenter.throttle import source_key

__all__ = ["Attempt", "Backoff", "Budget", "LoginGuard"]

FREE_PER_PAIR = 5  # failures for one account from one address before delays begin
FREE_PER_ACCOUNT = 10  # failures for one account from unfamiliar addresses, in all
FIRST_DELAY = 1.0  # seconds, after the free failures; doubles with each failure
LONGEST_DELAY = 900.0  # 15 min
FORGET_AFTER = 86_400.0  # a key's failures are forgotten a day after its last one
BUDGET_BURST = 100  # failures from unfamiliar pairs, in all, before the budget must refill
BUDGET_RATE = 0.5  # per second
KEYS_KEPT = 10_000  # per table
LONGEST_ID = 64  # longer ids are kept as a digest (an id is the attacker's choice)


@dataclass(slots=True)
class _Failures:
    count: int
    last: float  # when the last failure was counted


class Backoff:
    """Failures per key: ``free`` of them, then each further attempt waits after the
    last failure ``first`` seconds, doubled for each failure beyond, up to ``longest``."""

    __slots__ = ("_keys", "first", "forget", "free", "longest", "max_keys")

    def __init__(
        self,
        free: int,
        first: float = FIRST_DELAY,
        longest: float = LONGEST_DELAY,
        *,
        forget: float = FORGET_AFTER,
        max_keys: int = KEYS_KEPT,
    ) -> None:
        if free < 0 or not (0 < first <= longest) or forget < longest or max_keys < 1:
            raise ValueError("Backoff needs free >= 0, 0 < first <= longest <= forget, keys >= 1")
        self.free = free
        self.first = first
        self.longest = longest
        self.forget = forget
        self.max_keys = max_keys
        self._keys: OrderedDict[Hashable, _Failures] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def failures(self, key: Hashable, now: float) -> int:
        entry = self._live(key, now)
        return entry.count if entry is not None else 0

    def wait(self, key: Hashable, now: float) -> float:
        """Seconds before an attempt for ``key`` is heard; 0: now."""
        entry = self._live(key, now)
        if entry is None or entry.count < self.free:
            return 0.0
        delay = min(self.longest, self.first * 2.0 ** min(entry.count - self.free, 64))
        return max(0.0, entry.last + delay - now)

    def add(self, key: Hashable, now: float) -> None:
        """Count one failure (an attempt admitted, until it succeeds)."""
        entry = self._live(key, now)
        if entry is None:
            self._keys[key] = _Failures(1, now)
            if len(self._keys) > self.max_keys:
                self._keys.popitem(last=False)
            return
        self._keys.move_to_end(key)
        entry.count += 1
        entry.last = max(entry.last, now)

    def take_back(self, key: Hashable) -> None:
        """One failure was not one (its attempt succeeded)."""
        entry = self._keys.get(key)
        if entry is not None:
            entry.count -= 1
            if entry.count <= 0:
                del self._keys[key]

    def clear(self, key: Hashable) -> None:
        self._keys.pop(key, None)

    def _live(self, key: Hashable, now: float) -> _Failures | None:
        entry = self._keys.get(key)
        if entry is not None and now - entry.last >= self.forget:
            del self._keys[key]
            return None
        return entry


class Budget:
    """A token bucket shared by everyone: ``burst`` failures, refilled at ``rate`` a second."""

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, burst: int = BUDGET_BURST, rate: float = BUDGET_RATE) -> None:
        if burst < 1 or not (math.isfinite(rate) and rate > 0):
            raise ValueError("Budget needs burst >= 1 and a positive rate")
        self.burst = burst
        self.rate = rate
        self._tokens = float(burst)
        self._last: float | None = None

    def tokens(self, now: float) -> float:
        self._refill(now)
        return self._tokens

    def wait(self, now: float) -> float:
        """Seconds before one failure can be spent; 0: now."""
        tokens = self.tokens(now)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def take(self, now: float) -> None:
        self._refill(now)
        self._tokens -= 1.0

    def give_back(self) -> None:
        self._tokens = min(float(self.burst), self._tokens + 1.0)

    def _refill(self, now: float) -> None:
        if self._last is not None and now > self._last:
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
        if self._last is None or now > self._last:
            self._last = now


@dataclass(frozen=True, slots=True)
class Attempt:
    """An admitted attempt, counted as a failure until it succeeds."""

    user: str  # the id as keyed (a digest if long)
    source: str  # the address as keyed (an IPv6 address's /64)
    familiar: bool


class LoginGuard:
    """The login throttle: see the module docstring."""

    __slots__ = ("_familiar", "account", "budget", "max_familiar", "pair")

    def __init__(
        self,
        *,
        pair: Backoff | None = None,
        account: Backoff | None = None,
        budget: Budget | None = None,
        max_familiar: int = KEYS_KEPT,
    ) -> None:
        self.pair = pair if pair is not None else Backoff(FREE_PER_PAIR)
        self.account = account if account is not None else Backoff(FREE_PER_ACCOUNT)
        self.budget = budget if budget is not None else Budget()
        self.max_familiar = max_familiar
        # (user, source) pairs that logged in, least recently first.
        self._familiar: OrderedDict[tuple[str, str], None] = OrderedDict()

    def familiar(self, user_id: str, source: str) -> bool:
        """Has this account logged in from this address (since the start)?"""
        return (_user_key(user_id), source_key(source)) in self._familiar

    def wait(self, user_id: str, source: str, now: float) -> float:
        """Seconds before an attempt for ``user_id`` from ``source`` is heard; 0: now."""
        user, src = _user_key(user_id), source_key(source)
        wait = self.pair.wait((user, src), now)
        if (user, src) not in self._familiar:
            wait = max(wait, self.account.wait(user, now), self.budget.wait(now))
        return wait

    def begin(self, user_id: str, source: str, now: float) -> Attempt:
        """Admit an attempt (`wait` said 0): counted as a failure from now, before
        its password is hashed."""
        user, src = _user_key(user_id), source_key(source)
        familiar = (user, src) in self._familiar
        self.pair.add((user, src), now)
        if not familiar:
            self.account.add(user, now)
            self.budget.take(now)
        return Attempt(user, src, familiar)

    def succeeded(self, attempt: Attempt) -> None:
        """The password was right: the pair starts afresh and becomes familiar;
        what the attempt spent elsewhere is given back."""
        pair = (attempt.user, attempt.source)
        self.pair.clear(pair)
        if not attempt.familiar:
            self.account.take_back(attempt.user)
            self.budget.give_back()
        self._familiar[pair] = None
        self._familiar.move_to_end(pair)
        if len(self._familiar) > self.max_familiar:
            self._familiar.popitem(last=False)


def _user_key(user_id: str) -> str:
    if len(user_id) <= LONGEST_ID:
        return user_id
    return "#" + hashlib.blake2b(user_id.encode(errors="surrogatepass"), digest_size=16).hexdigest()
