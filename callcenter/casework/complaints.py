"""Complaints and their deadlines (pure, on the caller's clock).

Theory of operation
-------------------

A complaint (SOP 004 §3, 000 §4.2) moves through six states::

    RECEIVED --classify--> CLASSIFIED --investigate--> INVESTIGATED --correct--> CORRECTING
        |                      |                           |                       |
        +------------ call back (the complainant reached) -+-----------------------+
                                          |
                                          v
                                     CALLED_BACK --close--> CLOSED

- *received*: logged by the service centre (004 §3.5.2), with a provisional
  class (the form's, `ordinary` unless the agent chose one) and the deadline
  that class gives, counted from receipt.
- *classified*: a supervisor set the class. The class may change again after
  the investigation (`classify` in any open state, the state kept): the
  deadline is recomputed, always from receipt (004 §3.6.5-3.7.5).
- *investigated*: who looked into it, the findings, whether on site
  (004 §3.6.6: the manager may inspect a serious one on site).
- *correcting*: a corrective action, its owner and due time (004 §3.6.6);
  checked when due (`check`, 004 §3.7.3), the state kept.
- *called back*: the complainant was reached (004 §3.7.4), satisfied or not,
  in their own words. A call-back that did not reach them is recorded
  (`call back (missed)`) and leaves the state as it was.
- *closed*: only from *called back*: every complaint ends with a call-back
  (000 §4.2.4).

`assign` gives the complaint an owner in any open state. The table `TABLE`
below is the whole of it: an input it lacks for the complaint's state raises
`InvalidTransition`. Guards the table cannot say (closing a valid or serious
complaint needs its corrective action recorded and checked) raise
`ComplaintRefused`. Both are the caller's fault, with a message to show them.

Deadlines (docs/complaints.md)
------------------------------

Each class has a time from receipt and a milestone that meets it: *invalid*,
the complainant reached within 24 h (to explain); *other unit*, reached within
72 h; *valid*, the corrective action recorded with its owner within 72 h (the
cause and responsibility analysed, the handling record filled); *serious*, a
result (the corrective action) within 48 h; *ordinary* (rework, repair or a
concession), closed within 72 h. Days are calendar days of 24 hours: working
days would need a holiday calendar (chinese-calendar), which the project does
not have. A complaint is *overdue* from its deadline while it is open and its
milestone not met; it was *timely* if its milestone was met by the deadline.

Nothing here reads a clock: every entry point takes `now`, an aware datetime.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import assert_never

__all__ = [
    "DEADLINES",
    "TABLE",
    "Assign",
    "CallBack",
    "Check",
    "Classify",
    "Close",
    "Complaint",
    "ComplaintClass",
    "ComplaintError",
    "ComplaintRefused",
    "Correct",
    "Input",
    "InputKind",
    "InvalidTransition",
    "Investigate",
    "Milestone",
    "Status",
    "apply",
    "deadline_for",
    "kind_of",
    "received",
]


class ComplaintClass(enum.StrEnum):
    """The classes of SOP 004 §3.6."""

    ORDINARY = "ordinary"  # prompt rework, repair or a concession
    SERIOUS = "serious"  # several departments, media, reputation, repeated, system defect
    INVALID = "invalid"  # a misunderstanding, unfounded, outside the company's remit
    VALID = "valid"  # attitude, procedure, facilities, materials, management of the area
    OTHER_UNIT = "other-unit"  # involves another unit


class Milestone(enum.StrEnum):
    """What meets a class's deadline."""

    CONTACTED = "contacted"  # the complainant reached (a call-back that reached them)
    CORRECTED = "corrected"  # the corrective action recorded, with its owner
    CLOSED = "closed"


#: SOP 004 §3.6.5-3.7.5: per class, the time from receipt and what must be done by then.
DEADLINES: dict[ComplaintClass, tuple[timedelta, Milestone]] = {
    ComplaintClass.INVALID: (timedelta(hours=24), Milestone.CONTACTED),  # §3.6.5
    ComplaintClass.VALID: (timedelta(hours=72), Milestone.CORRECTED),  # §3.6.6
    ComplaintClass.SERIOUS: (timedelta(hours=48), Milestone.CORRECTED),  # §3.7.1
    ComplaintClass.OTHER_UNIT: (timedelta(hours=72), Milestone.CONTACTED),  # §3.7.5
    ComplaintClass.ORDINARY: (timedelta(hours=72), Milestone.CLOSED),  # the project's rule
}


def deadline_for(complaint_class: ComplaintClass, received_at: datetime) -> datetime:
    """The deadline of a complaint of this class received at `received_at`."""
    return received_at + DEADLINES[complaint_class][0]


class Status(enum.StrEnum):
    RECEIVED = "received"
    CLASSIFIED = "classified"
    INVESTIGATED = "investigated"
    CORRECTING = "correcting"
    CALLED_BACK = "called-back"
    CLOSED = "closed"


class InputKind(enum.StrEnum):
    ASSIGN = "assign"
    CLASSIFY = "classify"
    INVESTIGATE = "investigate"
    CORRECT = "correct"
    CHECK = "check"
    CALL_BACK = "call-back"  # the complainant reached
    CALL_BACK_MISSED = "call-back-missed"  # tried, not reached
    CLOSE = "close"


S, K = Status, InputKind
_OPEN = (S.RECEIVED, S.CLASSIFIED, S.INVESTIGATED, S.CORRECTING, S.CALLED_BACK)
#: (state, input) -> next state: the whole of the complaint's life.
TABLE: dict[tuple[Status, InputKind], Status] = {
    **{(s, K.ASSIGN): s for s in _OPEN},
    (S.RECEIVED, K.CLASSIFY): S.CLASSIFIED,
    # Reclassified after the investigation or the call-back: the deadline moves, the state stays.
    **{(s, K.CLASSIFY): s for s in _OPEN if s is not S.RECEIVED},
    (S.RECEIVED, K.INVESTIGATE): S.INVESTIGATED,
    (S.CLASSIFIED, K.INVESTIGATE): S.INVESTIGATED,
    (S.INVESTIGATED, K.INVESTIGATE): S.INVESTIGATED,  # more findings
    (S.CORRECTING, K.INVESTIGATE): S.CORRECTING,  # the action found not to work: look again
    (S.INVESTIGATED, K.CORRECT): S.CORRECTING,
    (S.CORRECTING, K.CORRECT): S.CORRECTING,  # a new action (another owner, another due time)
    (S.CORRECTING, K.CHECK): S.CORRECTING,
    (S.CALLED_BACK, K.CHECK): S.CALLED_BACK,  # checked after the call-back
    # Invalid and other-unit complaints are answered without an investigation.
    **{(s, K.CALL_BACK): S.CALLED_BACK for s in _OPEN},
    **{(s, K.CALL_BACK_MISSED): s for s in _OPEN},
    (S.CALLED_BACK, K.CLOSE): S.CLOSED,
}
del S, K


class ComplaintError(ValueError):
    """A change the complaint cannot take as it is; the message says why."""


class InvalidTransition(ComplaintError):
    def __init__(self, status: Status, kind: InputKind) -> None:
        super().__init__(f"a {status.value} complaint cannot take {kind.value!r}")
        self.status, self.kind = status, kind


class ComplaintRefused(ComplaintError):
    """A transition the table allows that the complaint's facts do not."""


# -- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Assign:
    owner: str


@dataclass(frozen=True, slots=True)
class Classify:
    complaint_class: ComplaintClass
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Investigate:
    by: str  # who investigated
    findings: str
    on_site: bool = False


@dataclass(frozen=True, slots=True)
class Correct:
    owner: str  # who carries out the corrective action
    action: str
    due_at: datetime


@dataclass(frozen=True, slots=True)
class Check:
    effective: bool
    notes: str | None = None


@dataclass(frozen=True, slots=True)
class CallBack:
    reached: bool
    satisfied: bool | None = None  # asked only when reached
    words: str | None = None  # the customer's words


@dataclass(frozen=True, slots=True)
class Close:
    notes: str | None = None


Input = Assign | Classify | Investigate | Correct | Check | CallBack | Close


def kind_of(change: Input) -> InputKind:
    match change:
        case Assign():
            return InputKind.ASSIGN
        case Classify():
            return InputKind.CLASSIFY
        case Investigate():
            return InputKind.INVESTIGATE
        case Correct():
            return InputKind.CORRECT
        case Check():
            return InputKind.CHECK
        case CallBack():
            return InputKind.CALL_BACK if change.reached else InputKind.CALL_BACK_MISSED
        case Close():
            return InputKind.CLOSE
        case _:
            assert_never(change)


# -- the complaint ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Complaint:
    """A complaint's state and facts. Times are aware datetimes."""

    status: Status
    complaint_class: ComplaintClass
    received_at: datetime
    deadline_at: datetime
    owner: str | None = None
    investigated_by: str | None = None
    findings: str | None = None
    on_site: bool = False
    action: str | None = None
    action_owner: str | None = None
    action_due_at: datetime | None = None
    action_checked_at: datetime | None = None
    action_effective: bool | None = None
    contacted_at: datetime | None = None  # the first call-back that reached the complainant
    corrected_at: datetime | None = None  # the first corrective action recorded
    called_back_at: datetime | None = None  # the last call-back that reached them
    satisfied: bool | None = None
    customer_words: str | None = None
    closed_at: datetime | None = None

    @property
    def milestone(self) -> Milestone:
        return DEADLINES[self.complaint_class][1]

    def met_at(self) -> datetime | None:
        """When the class's milestone was met (None: not yet)."""
        match self.milestone:
            case Milestone.CONTACTED:
                return self.contacted_at
            case Milestone.CORRECTED:
                return self.corrected_at
            case Milestone.CLOSED:
                return self.closed_at
            case _:
                assert_never(self.milestone)

    def overdue(self, now: datetime) -> bool:
        """Open, past its deadline, and its milestone not met."""
        return self.status is not Status.CLOSED and self.met_at() is None and now > self.deadline_at

    def timely(self) -> bool | None:
        """For a closed complaint, whether its milestone was met by the deadline."""
        if self.status is not Status.CLOSED:
            return None
        met = self.met_at()
        return met is not None and met <= self.deadline_at


def received(
    received_at: datetime, complaint_class: ComplaintClass = ComplaintClass.ORDINARY
) -> Complaint:
    """A complaint as the service centre logs it: provisionally classed, its deadline set."""
    if received_at.tzinfo is None:
        raise ComplaintRefused("received_at needs a time zone")
    return Complaint(
        Status.RECEIVED, complaint_class, received_at, deadline_for(complaint_class, received_at)
    )


def apply(complaint: Complaint, change: Input, now: datetime) -> Complaint:
    """The complaint after `change`, made at `now`.

    Raises `InvalidTransition` for an input the table lacks in the complaint's
    state and `ComplaintRefused` for one its facts do not allow.
    """
    if now.tzinfo is None:
        raise ComplaintRefused("now needs a time zone")
    kind = kind_of(change)
    after = TABLE.get((complaint.status, kind))
    if after is None:
        raise InvalidTransition(complaint.status, kind)
    c = replace(complaint, status=after)
    match change:
        case Assign(owner):
            return replace(c, owner=owner)
        case Classify(cls):
            return replace(c, complaint_class=cls, deadline_at=deadline_for(cls, c.received_at))
        case Investigate(by, findings, on_site):
            return replace(c, investigated_by=by, findings=findings, on_site=on_site)
        case Correct(owner, action, due_at):
            if due_at.tzinfo is None:
                raise ComplaintRefused("due_at needs a time zone")
            return replace(
                c, action=action, action_owner=owner, action_due_at=due_at,
                action_checked_at=None, action_effective=None,
                corrected_at=c.corrected_at or now,
            )  # fmt: skip
        case Check(effective):
            if c.action is None:
                raise ComplaintRefused("there is no corrective action to check")
            return replace(c, action_checked_at=now, action_effective=effective)
        case CallBack(reached, satisfied, words):
            if not reached:
                return c
            return replace(
                c, contacted_at=c.contacted_at or now, called_back_at=now, satisfied=satisfied,
                customer_words=words,
            )  # fmt: skip
        case Close():
            _may_close(c)
            return replace(c, closed_at=now)
        case _:
            assert_never(change)


def _may_close(c: Complaint) -> None:
    """SOP 004 §3.6.6 and §3.7.3: a valid or serious complaint has a corrective
    action with an owner; a corrective action is checked before the complaint closes."""
    if c.complaint_class in (ComplaintClass.VALID, ComplaintClass.SERIOUS) and c.action is None:
        raise ComplaintRefused(
            f"a {c.complaint_class.value} complaint needs a corrective action before it closes"
        )
    if c.action is not None and c.action_checked_at is None:
        raise ComplaintRefused("the corrective action has not been checked")
