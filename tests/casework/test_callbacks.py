"""The worklist's rules (casework/callbacks.py) on a fake clock: which attempts
close an item, the retry, the last attempt, expiry at the end of the next local
day, what is due and what is overdue."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from callcenter.casework.callbacks import (
    CLOSING,
    CallbackRefused,
    Item,
    Kind,
    Outcome,
    Policy,
    Status,
    attempt,
    due,
    expire,
    expires_at,
    local_day,
    overdue,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
M = timedelta(minutes=1)
POLICY = Policy(max_attempts=3, retry=30 * M, expire=timedelta(hours=48))


def item(kind: Kind = Kind.ABANDONED, **changes: object) -> Item:
    made = Item(kind, Status.OPEN, T0, 0, 3, None,
                expires_at(date(2026, 3, 2), SHANGHAI, POLICY) if kind is Kind.ABANDONED else None)  # fmt: skip
    return replace(made, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("outcome", sorted(CLOSING, key=lambda o: o.value))
def test_reached_wrong_number_and_declined_close_the_item_at_once(outcome: Outcome) -> None:
    after = attempt(item(), outcome, T0 + M, POLICY)
    assert (after.status, after.attempts, after.closed_as, after.closed_at) == (
        Status.CLOSED, 1, outcome.value, T0 + M,
    )  # fmt: skip
    assert after.next_attempt_at is None


@pytest.mark.parametrize("outcome", [Outcome.NO_ANSWER, Outcome.BUSY, Outcome.FAILED])
def test_an_attempt_that_did_not_reach_retries_until_the_last_allowed(outcome: Outcome) -> None:
    first = attempt(item(), outcome, T0 + M, POLICY)
    assert (first.status, first.attempts, first.next_attempt_at) == (
        Status.OPEN, 1, T0 + 31 * M,
    )  # fmt: skip
    assert not due(first, T0 + 30 * M) and due(first, T0 + 31 * M)
    second = attempt(first, outcome, T0 + 40 * M, POLICY)
    assert (second.status, second.attempts) == (Status.OPEN, 2)
    third = attempt(second, outcome, T0 + 80 * M, POLICY)
    assert (third.status, third.attempts, third.closed_as) == (Status.CLOSED, 3, outcome.value)
    with pytest.raises(CallbackRefused, match="closed"):
        attempt(third, Outcome.REACHED, T0 + 90 * M, POLICY)


def test_the_items_own_maximum_counts_not_the_policys() -> None:
    one = attempt(item(max_attempts=1), Outcome.BUSY, T0, POLICY)
    assert one.status is Status.CLOSED


def test_an_abandoned_caller_is_owed_until_the_end_of_the_next_local_day() -> None:
    # 23:30 in Shanghai on 2 March is 15:30 UTC: the local day is the 2nd.
    late = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
    assert local_day(late, SHANGHAI) == date(2026, 3, 2)
    assert local_day(late, ZoneInfo("UTC")) == date(2026, 3, 2)
    assert local_day(datetime(2026, 3, 2, 16, 30, tzinfo=UTC), SHANGHAI) == date(2026, 3, 3)
    end = expires_at(date(2026, 3, 2), SHANGHAI, POLICY)
    assert end == datetime(2026, 3, 3, 16, 0, tzinfo=UTC)  # midnight ending the 3rd, local
    assert expires_at(date(2026, 3, 2), SHANGHAI, Policy(expire=timedelta(hours=30))) == (
        datetime(2026, 3, 2, 22, 0, tzinfo=UTC)  # 06:00 on the 3rd, local
    )
    made = item()
    assert expire(made, end - M).status is Status.OPEN and due(made, end - M)
    gone = expire(made, end)
    assert gone.status is Status.EXPIRED and not due(made, end)
    with pytest.raises(CallbackRefused, match="expired"):
        attempt(gone, Outcome.REACHED, end, POLICY)


def test_expiry_counts_local_days_across_a_clock_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # 29 March 2026: 02:00 -> 03:00, a 23-hour day
    end = expires_at(date(2026, 3, 28), berlin, POLICY)
    assert end == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)  # midnight ending the 29th, CEST
    assert end - datetime(2026, 3, 27, 23, 0, tzinfo=UTC) == timedelta(hours=47)


def test_a_follow_up_does_not_expire_it_becomes_overdue() -> None:
    follow = item(Kind.CALL_BACK, owed_since=T0 + 60 * M)
    assert not due(follow, T0) and not overdue(follow, T0)
    assert due(follow, T0 + 60 * M) and not overdue(follow, T0 + 60 * M)
    years = T0 + timedelta(days=400)
    assert expire(follow, years).status is Status.OPEN
    assert due(follow, years) and overdue(follow, years)
    assert not overdue(item(), years)  # an abandoned one expires instead
    assert not overdue(attempt(follow, Outcome.REACHED, years, POLICY), years)
