"""The login throttle's rule (pure): per account and address, per account from
unfamiliar addresses, a global budget; bounded memory."""

from __future__ import annotations

import pytest

from callcenter.agent.login_guard import Backoff, Budget, LoginGuard


def test_a_backoff_forgets_a_day_after_the_last_failure() -> None:
    backoff = Backoff(2, first=1.0, longest=8.0, forget=100.0)
    for t in range(4):
        backoff.add("k", float(t))
    assert backoff.wait("k", 3.0) == 4.0  # the third and fourth failures: 1 s, then 2, then 4
    assert backoff.wait("k", 102.9) == 0.0 and backoff.failures("k", 102.9) == 4
    assert backoff.failures("k", 103.0) == 0 and len(backoff) == 0


def test_a_backoff_keeps_at_most_its_keys_least_recent_forgotten_first() -> None:
    backoff = Backoff(0, max_keys=3)
    for key in "abcd":
        backoff.add(key, 0.0)
    assert len(backoff) == 3 and backoff.failures("a", 0.0) == 0
    backoff.take_back("b")
    assert backoff.failures("b", 0.0) == 0 and len(backoff) == 2


@pytest.mark.parametrize(
    "kw",
    [{"free": -1}, {"free": 1, "first": 0.0}, {"free": 1, "first": 10.0, "longest": 5.0},
     {"free": 1, "forget": 10.0}, {"free": 1, "max_keys": 0}],
)  # fmt: skip
def test_bad_backoffs_are_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kw)  # type: ignore[arg-type]


def test_the_budget_refills_and_takes_back_what_succeeded() -> None:
    budget = Budget(burst=2, rate=0.5)
    budget.take(0.0)
    budget.take(0.0)
    assert budget.wait(0.0) == 2.0
    assert budget.wait(1.0) == 1.0  # half a token back
    budget.give_back()
    assert budget.tokens(1.0) == 1.5
    budget.give_back()
    assert budget.tokens(1.0) == 2.0  # never beyond the burst


def test_long_ids_and_ipv6_addresses_are_keyed_compactly() -> None:
    guard = LoginGuard()
    huge = "x" * 100_000
    for _ in range(5):
        attempt = guard.begin(huge, "2001:db8::1", 0.0)
    assert len(attempt.user) == 33 and attempt.source == "2001:db8::/64"
    # Another address of the same /64 is the same source (one host owns a /64).
    assert guard.wait(huge, "2001:db8::ffff", 0.0) == 1.0
    assert guard.wait(huge, "2001:db8:1::1", 0.0) == 0.0


def test_a_success_makes_the_pair_familiar_and_gives_back_what_it_spent() -> None:
    guard = LoginGuard()
    assert not guard.familiar("a1", "10.0.0.1")
    attempt = guard.begin("a1", "10.0.0.1", 0.0)
    assert guard.budget.tokens(0.0) == 99 and guard.account.failures("a1", 0.0) == 1
    guard.succeeded(attempt)
    assert guard.familiar("a1", "10.0.0.1") and not guard.familiar("a1", "10.0.0.2")
    assert guard.budget.tokens(0.0) == 100 and guard.account.failures("a1", 0.0) == 0
    # From a familiar address, failures spend neither the account's count nor the budget.
    guard.begin("a1", "10.0.0.1", 0.0)
    assert guard.budget.tokens(0.0) == 100 and guard.account.failures("a1", 0.0) == 0
    assert guard.pair.failures(("a1", "10.0.0.1"), 0.0) == 1
