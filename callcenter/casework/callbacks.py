"""Calling customers back: the worklist's rules (pure, on the caller's clock).

Theory of operation
-------------------

The centre owes a call to a caller who hung up while waiting (kind
`abandoned`), to a complainant whose complaint ends with a call-back
(`call-back`) and to a customer promised a reply (`reply`); docs/callbacks.md.
An item is OPEN until an attempt closes it, or until it EXPIRES::

    OPEN --attempt reached / wrong-number / declined-----------> CLOSED
    OPEN --attempt no-answer / busy / failed, the last allowed-> CLOSED
    OPEN --attempt no-answer / busy / failed, more allowed-----> OPEN (retry later)
    OPEN --the caller was answered again (abandoned only)------> CLOSED (answered-again)
    OPEN --the follow-up was done elsewhere (follow-ups only)--> CLOSED (done)
    OPEN --past its expiry (abandoned only)--------------------> EXPIRED

An attempt that did not reach the customer sets the next attempt's time
(`Policy.retry`); the item is not due before it. An abandoned caller is owed
the call until the end of the day after the abandon (`Policy.expire`, counted
from the local midnight that began the abandon's day); a follow-up keeps its
own due time and does not expire (past it, it is overdue). Nothing here reads
a clock: every function takes `now`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "CLOSING",
    "CallbackRefused",
    "Item",
    "Kind",
    "Outcome",
    "Policy",
    "Status",
    "attempt",
    "due",
    "expire",
    "expires_at",
    "local_day",
    "overdue",
]


class Kind(enum.Enum):
    ABANDONED = "abandoned"
    CALL_BACK = "call-back"  # a complaint's call-back (follow_ups kind call-back)
    REPLY = "reply"  # a promised reply (follow_ups kind reply)


class Status(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"
    EXPIRED = "expired"


class Outcome(enum.Enum):
    """What one attempt to call the customer came to."""

    REACHED = "reached"
    NO_ANSWER = "no-answer"
    BUSY = "busy"
    WRONG_NUMBER = "wrong-number"
    DECLINED = "declined"  # the customer declined
    FAILED = "failed"  # the call could not be placed


#: The outcomes that close an item at once; the others close it at its last attempt.
CLOSING = frozenset({Outcome.REACHED, Outcome.WRONG_NUMBER, Outcome.DECLINED})


class CallbackRefused(Exception):
    """An attempt on an item that is not open."""


@dataclass(frozen=True, slots=True)
class Policy:
    """The `[callbacks]` settings the rules use."""

    max_attempts: int = 3
    retry: timedelta = timedelta(minutes=30)
    expire: timedelta = timedelta(hours=48)


@dataclass(frozen=True, slots=True)
class Item:
    kind: Kind
    status: Status
    owed_since: datetime  # the abandon (the day's first), or the follow-up's due time
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None  # not due before it (after a failed attempt)
    expires_at: datetime | None  # abandoned items only
    closed_at: datetime | None = None
    closed_as: str | None = None  # the closing outcome, "answered-again", "done"


def local_day(at: datetime, zone: ZoneInfo) -> date:
    """The local day an instant falls on."""
    return at.astimezone(zone).date()


def expires_at(day: date, zone: ZoneInfo, policy: Policy) -> datetime:
    """When an abandoned caller of local `day` is no longer owed the call: the
    local midnight that began the day, plus `policy.expire` (48 h: the end of
    the next day; a day of a DST change counts its wall-clock hours)."""
    days, rest = divmod(policy.expire, timedelta(days=1))
    return datetime.combine(day + timedelta(days=days), time(0), tzinfo=zone) + rest


def attempt(item: Item, outcome: Outcome, now: datetime, policy: Policy) -> Item:
    """The item after an attempt with `outcome` at `now`; `CallbackRefused` when it is
    not open (closed or expired: nothing to record it on)."""
    if item.status is not Status.OPEN:
        raise CallbackRefused(f"the item is {item.status.value}: no attempt is recorded on it")
    attempts = item.attempts + 1
    if outcome in CLOSING or attempts >= item.max_attempts:
        return replace(
            item, status=Status.CLOSED, attempts=attempts, next_attempt_at=None,
            closed_at=now, closed_as=outcome.value,
        )  # fmt: skip
    return replace(item, attempts=attempts, next_attempt_at=now + policy.retry)


def expire(item: Item, now: datetime) -> Item:
    """The item at `now`: an open one past its expiry is EXPIRED (a follow-up never)."""
    if item.status is Status.OPEN and item.expires_at is not None and now >= item.expires_at:
        return replace(item, status=Status.EXPIRED, next_attempt_at=None)
    return item


def due(item: Item, now: datetime) -> bool:
    """Is the item to be worked at `now`: open, owed by now, not waiting for its retry?"""
    return (
        expire(item, now).status is Status.OPEN
        and item.owed_since <= now
        and (item.next_attempt_at is None or item.next_attempt_at <= now)
    )


def overdue(item: Item, now: datetime) -> bool:
    """A follow-up still open past its due time (an abandoned item expires instead)."""
    return item.kind is not Kind.ABANDONED and item.status is Status.OPEN and now > item.owed_since
