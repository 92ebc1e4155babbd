"""Suggestions and promised replies (pure, on the caller's clock).

Theory of operation
-------------------

A suggestion (000 §4.3: record and thank; assess feasibility and value;
forward the valuable ones; report the outcome to the customer, and if
adopted thank them and say what changed) moves through four states::

    RECORDED --assess--> ASSESSED --forward--> FORWARDED --answer--> ANSWERED
                            |                                  ^
                            +------------ answer --------------+

`assess` records whether it is feasible and valuable (again in ASSESSED, a
second opinion); `forward` sends a valuable one to a department, `answer`
tells the customer the outcome, adopted or not. Guards the table cannot say:
only a suggestion assessed valuable is forwarded, and only a forwarded one
can have been adopted (someone must have taken it up). The adoption rate
(000 §6) is adopted / answered.

A promised reply (000 §4.1.2: "we will check and call you back by ...") is
a follow-up: OPEN, with a due time and an owner, until the reply is given
(DONE). `assign` and `reschedule` keep it open; it is overdue past its due
time while open.

Both tables are data; an input a table lacks raises `InvalidTransition`, a
guard `CaseRefused`. Nothing here reads a clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime
from typing import assert_never

__all__ = [
    "FOLLOW_UP_TABLE",
    "SUGGESTION_TABLE",
    "Answer",
    "Assess",
    "AssignReply",
    "CaseRefused",
    "FollowUp",
    "FollowUpInput",
    "FollowUpKind",
    "FollowUpStatus",
    "Forward",
    "InvalidTransition",
    "Reply",
    "Reschedule",
    "Suggestion",
    "SuggestionInput",
    "SuggestionKind",
    "SuggestionStatus",
    "apply_follow_up",
    "apply_suggestion",
    "follow_up_kind",
    "suggestion_kind",
]


class CaseRefused(ValueError):
    """A change the suggestion or follow-up cannot take; the message says why."""


class InvalidTransition(CaseRefused):
    def __init__(self, status: enum.Enum, kind: enum.Enum) -> None:
        super().__init__(f"a {status.value} case cannot take {kind.value!r}")
        self.status, self.kind = status, kind


# -- suggestions ----------------------------------------------------------------------------


class SuggestionStatus(enum.StrEnum):
    RECORDED = "recorded"
    ASSESSED = "assessed"
    FORWARDED = "forwarded"
    ANSWERED = "answered"


class SuggestionKind(enum.StrEnum):
    ASSESS = "assess"
    FORWARD = "forward"
    ANSWER = "answer"


S, K = SuggestionStatus, SuggestionKind
#: (state, input) -> next state.
SUGGESTION_TABLE: dict[tuple[SuggestionStatus, SuggestionKind], SuggestionStatus] = {
    (S.RECORDED, K.ASSESS): S.ASSESSED,
    (S.ASSESSED, K.ASSESS): S.ASSESSED,
    (S.ASSESSED, K.FORWARD): S.FORWARDED,
    (S.ASSESSED, K.ANSWER): S.ANSWERED,  # not valuable, or not feasible: answered as such
    (S.FORWARDED, K.ANSWER): S.ANSWERED,
}
del S, K


@dataclass(frozen=True, slots=True)
class Assess:
    feasible: bool
    valuable: bool
    notes: str | None = None


@dataclass(frozen=True, slots=True)
class Forward:
    to: str  # the department or person it goes to


@dataclass(frozen=True, slots=True)
class Answer:
    adopted: bool
    answer: str  # what the customer was told (and, if adopted, what changed)


SuggestionInput = Assess | Forward | Answer


@dataclass(frozen=True, slots=True)
class Suggestion:
    status: SuggestionStatus
    received_at: datetime
    feasible: bool | None = None
    valuable: bool | None = None
    forwarded_to: str | None = None
    adopted: bool | None = None
    answer: str | None = None
    answered_at: datetime | None = None


def suggestion_kind(change: SuggestionInput) -> SuggestionKind:
    match change:
        case Assess():
            return SuggestionKind.ASSESS
        case Forward():
            return SuggestionKind.FORWARD
        case Answer():
            return SuggestionKind.ANSWER
        case _:
            assert_never(change)


def apply_suggestion(s: Suggestion, change: SuggestionInput, now: datetime) -> Suggestion:
    """The suggestion after `change` at `now`; `InvalidTransition` or `CaseRefused`."""
    if now.tzinfo is None:
        raise CaseRefused("now needs a time zone")
    kind = suggestion_kind(change)
    after = SUGGESTION_TABLE.get((s.status, kind))
    if after is None:
        raise InvalidTransition(s.status, kind)
    s = replace(s, status=after)
    match change:
        case Assess(feasible, valuable):
            return replace(s, feasible=feasible, valuable=valuable)
        case Forward(to):
            if not s.valuable:
                raise CaseRefused("only a suggestion assessed valuable is forwarded")
            return replace(s, forwarded_to=to)
        case Answer(adopted, answer):
            if adopted and s.forwarded_to is None:
                raise CaseRefused("a suggestion is adopted by whom it was forwarded to: forward it")
            return replace(s, adopted=adopted, answer=answer, answered_at=now)
        case _:
            assert_never(change)


# -- promised replies (follow-ups) --------------------------------------------------------


class FollowUpStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"


class FollowUpKind(enum.StrEnum):
    ASSIGN = "assign"
    RESCHEDULE = "reschedule"
    REPLY = "reply"


U, F = FollowUpStatus, FollowUpKind
#: (state, input) -> next state.
FOLLOW_UP_TABLE: dict[tuple[FollowUpStatus, FollowUpKind], FollowUpStatus] = {
    (U.OPEN, F.ASSIGN): U.OPEN,
    (U.OPEN, F.RESCHEDULE): U.OPEN,
    (U.OPEN, F.REPLY): U.DONE,
}
del U, F


@dataclass(frozen=True, slots=True)
class AssignReply:
    owner: str


@dataclass(frozen=True, slots=True)
class Reschedule:
    due_at: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Reply:
    notes: str | None = None  # what the customer was told


FollowUpInput = AssignReply | Reschedule | Reply


@dataclass(frozen=True, slots=True)
class FollowUp:
    status: FollowUpStatus
    due_at: datetime
    owner: str | None = None
    done_at: datetime | None = None

    def overdue(self, now: datetime) -> bool:
        return self.status is FollowUpStatus.OPEN and now > self.due_at


def follow_up_kind(change: FollowUpInput) -> FollowUpKind:
    match change:
        case AssignReply():
            return FollowUpKind.ASSIGN
        case Reschedule():
            return FollowUpKind.RESCHEDULE
        case Reply():
            return FollowUpKind.REPLY
        case _:
            assert_never(change)


def apply_follow_up(f: FollowUp, change: FollowUpInput, now: datetime) -> FollowUp:
    """The follow-up after `change` at `now`; `InvalidTransition` or `CaseRefused`."""
    if now.tzinfo is None:
        raise CaseRefused("now needs a time zone")
    kind = follow_up_kind(change)
    after = FOLLOW_UP_TABLE.get((f.status, kind))
    if after is None:
        raise InvalidTransition(f.status, kind)
    f = replace(f, status=after)
    match change:
        case AssignReply(owner):
            return replace(f, owner=owner)
        case Reschedule(due_at):
            if due_at.tzinfo is None:
                raise CaseRefused("due_at needs a time zone")
            return replace(f, due_at=due_at)
        case Reply():
            return replace(f, done_at=now)
        case _:
            assert_never(change)
