"""Complaints on a fake clock: every transition of the table, every deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callcenter.casework.complaints import (
    TABLE,
    Assign,
    CallBack,
    Check,
    Classify,
    Close,
    Complaint,
    ComplaintClass,
    ComplaintRefused,
    Correct,
    Input,
    InputKind,
    InvalidTransition,
    Investigate,
    Status,
    apply,
    kind_of,
    received,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
C = ComplaintClass

#: One input of each kind.
INPUTS: dict[InputKind, Input] = {
    InputKind.ASSIGN: Assign("sup"),
    InputKind.CLASSIFY: Classify(C.VALID, "staff attitude"),
    InputKind.INVESTIGATE: Investigate("li", "the fitter left early", on_site=True),
    InputKind.CORRECT: Correct("wang", "retrain the fitters", T0 + 96 * H),
    InputKind.CHECK: Check(effective=True),
    InputKind.CALL_BACK: CallBack(reached=True, satisfied=True, words="fine now"),
    InputKind.CALL_BACK_MISSED: CallBack(reached=False),
    InputKind.CLOSE: Close(),
}


def in_state(status: Status) -> Complaint:
    """A complaint in `status`, with the facts that state implies (action checked)."""
    c = received(T0, C.ORDINARY)
    steps: dict[Status, list[Input]] = {
        Status.RECEIVED: [],
        Status.CLASSIFIED: [Classify(C.VALID)],
        Status.INVESTIGATED: [Classify(C.VALID), INPUTS[InputKind.INVESTIGATE]],
        Status.CORRECTING: [
            Classify(C.VALID), INPUTS[InputKind.INVESTIGATE], INPUTS[InputKind.CORRECT],
            Check(effective=True),
        ],
        Status.CALLED_BACK: [
            Classify(C.VALID), INPUTS[InputKind.INVESTIGATE], INPUTS[InputKind.CORRECT],
            Check(effective=True),
            INPUTS[InputKind.CALL_BACK],
        ],
        Status.CLOSED: [Classify(C.INVALID), INPUTS[InputKind.CALL_BACK], Close()],
    }  # fmt: skip
    for step in steps[status]:
        c = apply(c, step, T0 + H)
    assert c.status is status
    return c


@pytest.mark.parametrize("status", list(Status))
@pytest.mark.parametrize("kind", list(InputKind))
def test_every_pair_follows_the_table_or_is_refused(status: Status, kind: InputKind) -> None:
    c = in_state(status)
    change = INPUTS[kind]
    assert kind_of(change) is kind
    expected = TABLE.get((status, kind))
    if expected is None:
        with pytest.raises(InvalidTransition) as refused:
            apply(c, change, T0 + 2 * H)
        assert refused.value.status is status and refused.value.kind is kind
        assert status.value in str(refused.value) and kind.value in str(refused.value)
    else:
        assert apply(c, change, T0 + 2 * H).status is expected


def test_a_closed_complaint_takes_nothing() -> None:
    assert not [k for (s, k) in TABLE if s is Status.CLOSED]


def test_the_whole_life_of_a_valid_complaint() -> None:
    c = received(T0)
    assert (c.status, c.complaint_class, c.deadline_at) == (
        Status.RECEIVED,
        C.ORDINARY,
        T0 + 72 * H,
    )
    c = apply(c, Assign("sup"), T0 + H)
    assert c.owner == "sup" and c.status is Status.RECEIVED
    c = apply(c, Investigate("li", "rude on the phone"), T0 + 2 * H)
    assert (c.status, c.investigated_by, c.findings, c.on_site) == (
        Status.INVESTIGATED, "li", "rude on the phone", False,
    )  # fmt: skip
    c = apply(c, Classify(C.VALID), T0 + 3 * H)
    assert c.status is Status.INVESTIGATED and c.deadline_at == T0 + 72 * H
    c = apply(c, Correct("wang", "coaching", T0 + 120 * H), T0 + 10 * H)
    assert (c.status, c.action_owner, c.corrected_at) == (Status.CORRECTING, "wang", T0 + 10 * H)
    assert c.met_at() == T0 + 10 * H and not c.overdue(T0 + 100 * H)
    c = apply(c, Check(effective=True, notes="no more complaints"), T0 + 120 * H)
    assert (c.action_checked_at, c.action_effective) == (T0 + 120 * H, True)
    c = apply(c, CallBack(reached=False), T0 + 121 * H)
    assert c.status is Status.CORRECTING and c.contacted_at is None
    c = apply(c, CallBack(reached=True, satisfied=True, words="好多了"), T0 + 122 * H)
    assert (c.status, c.contacted_at, c.satisfied, c.customer_words) == (
        Status.CALLED_BACK, T0 + 122 * H, True, "好多了",
    )  # fmt: skip
    c = apply(c, Close(), T0 + 123 * H)
    assert c.status is Status.CLOSED and c.closed_at == T0 + 123 * H
    assert c.timely() is True and not c.overdue(T0 + 1000 * H)


@pytest.mark.parametrize(
    ("cls", "hours"),
    [(C.INVALID, 24), (C.VALID, 72), (C.SERIOUS, 48), (C.OTHER_UNIT, 72), (C.ORDINARY, 72)],
)
def test_each_class_deadline_counts_calendar_hours_from_receipt(
    cls: ComplaintClass, hours: int
) -> None:
    c = received(T0, cls)
    assert c.deadline_at == T0 + hours * H
    assert not c.overdue(T0 + hours * H)  # at the deadline: not yet late
    assert c.overdue(T0 + hours * H + timedelta(seconds=1))


def test_an_invalid_complaint_untouched_for_25_hours_is_overdue() -> None:
    c = apply(received(T0), Classify(C.INVALID), T0 + H)
    assert c.deadline_at == T0 + 24 * H
    assert not c.overdue(T0 + 23 * H)
    assert c.overdue(T0 + 25 * H)


def test_an_invalid_complaint_is_met_by_reaching_the_complainant() -> None:
    c = apply(received(T0), Classify(C.INVALID), T0 + H)
    c = apply(c, CallBack(reached=False), T0 + 20 * H)
    assert c.overdue(T0 + 25 * H)  # tried is not reached
    c = apply(c, CallBack(reached=True, satisfied=False, words="still unhappy"), T0 + 23 * H)
    assert not c.overdue(T0 + 25 * H) and c.met_at() == T0 + 23 * H
    c = apply(c, Close(), T0 + 30 * H)
    assert c.timely() is True


def test_reclassifying_a_valid_one_as_serious_moves_its_deadline_to_48_hours_from_receipt() -> None:
    c = apply(received(T0), Classify(C.VALID), T0 + H)
    assert c.deadline_at == T0 + 72 * H
    c = apply(c, Investigate("li", "the lift failed three times", on_site=True), T0 + 30 * H)
    c = apply(c, Classify(C.SERIOUS, "repeated, unresolved"), T0 + 40 * H)
    assert c.deadline_at == T0 + 48 * H and c.status is Status.INVESTIGATED
    assert c.overdue(T0 + 49 * H)
    # And back: the deadline is always counted from receipt, not from the change.
    assert apply(c, Classify(C.VALID), T0 + 60 * H).deadline_at == T0 + 72 * H


def test_an_ordinary_complaint_is_met_only_by_closing() -> None:
    c = apply(received(T0), CallBack(reached=True, satisfied=True), T0 + H)
    assert c.overdue(T0 + 73 * H)
    late = apply(c, Close(), T0 + 80 * H)
    assert late.timely() is False and not late.overdue(T0 + 81 * H)
    assert apply(c, Close(), T0 + 2 * H).timely() is True


def test_closing_without_a_call_back_is_refused() -> None:
    for status in (Status.RECEIVED, Status.CLASSIFIED, Status.INVESTIGATED, Status.CORRECTING):
        with pytest.raises(InvalidTransition, match="cannot take 'close'"):
            apply(in_state(status), Close(), T0 + 5 * H)


def test_a_valid_or_serious_complaint_closes_only_with_a_checked_corrective_action() -> None:
    for cls in (C.VALID, C.SERIOUS):
        c = apply(received(T0, cls), CallBack(reached=True), T0 + H)
        with pytest.raises(ComplaintRefused, match="needs a corrective action"):
            apply(c, Close(), T0 + 2 * H)
    c = apply(received(T0, C.VALID), Investigate("li", "x"), T0 + H)
    c = apply(c, Correct("wang", "fix", T0 + 5 * H), T0 + 2 * H)
    c = apply(c, CallBack(reached=True), T0 + 3 * H)
    with pytest.raises(ComplaintRefused, match="not been checked"):
        apply(c, Close(), T0 + 4 * H)
    c = apply(c, Check(effective=True), T0 + 5 * H)
    assert apply(c, Close(), T0 + 6 * H).status is Status.CLOSED


def test_a_new_corrective_action_must_be_checked_again_and_keeps_the_first_time() -> None:
    c = in_state(Status.CORRECTING)
    assert c.action_checked_at is not None
    c2 = apply(c, Correct("zhao", "replace the part", T0 + 200 * H), T0 + 50 * H)
    assert c2.action_checked_at is None and c2.corrected_at == c.corrected_at == T0 + H


def test_a_check_without_an_action_is_refused() -> None:
    c = apply(received(T0, C.INVALID), CallBack(reached=True), T0 + H)
    with pytest.raises(ComplaintRefused, match="no corrective action"):
        apply(c, Check(effective=True), T0 + 2 * H)


def test_times_without_a_zone_are_refused() -> None:
    naive = datetime(2026, 3, 2, 9, 0)
    with pytest.raises(ComplaintRefused):
        received(naive)
    with pytest.raises(ComplaintRefused):
        apply(received(T0), Assign("x"), naive)
    with pytest.raises(ComplaintRefused):
        apply(in_state(Status.INVESTIGATED), Correct("w", "a", naive), T0 + H)


def test_timely_is_only_for_closed_complaints() -> None:
    assert received(T0).timely() is None
