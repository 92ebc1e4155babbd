"""Suggestions and promised replies on a fake clock: every pair of each table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callcenter.casework.suggestions import (
    FOLLOW_UP_TABLE,
    SUGGESTION_TABLE,
    Answer,
    Assess,
    AssignReply,
    CaseRefused,
    FollowUp,
    FollowUpInput,
    FollowUpKind,
    FollowUpStatus,
    Forward,
    InvalidTransition,
    Reply,
    Reschedule,
    Suggestion,
    SuggestionInput,
    SuggestionKind,
    SuggestionStatus,
    apply_follow_up,
    apply_suggestion,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
S = SuggestionStatus

SUGGESTION_INPUTS: dict[SuggestionKind, SuggestionInput] = {
    SuggestionKind.ASSESS: Assess(feasible=True, valuable=True),
    SuggestionKind.FORWARD: Forward("property management"),
    SuggestionKind.ANSWER: Answer(adopted=False, answer="thank you; not this year"),
}


def suggestion_in(status: SuggestionStatus) -> Suggestion:
    s = Suggestion(S.RECORDED, T0)
    steps: list[SuggestionInput] = {
        S.RECORDED: [],
        S.ASSESSED: [Assess(True, True)],
        S.FORWARDED: [Assess(True, True), Forward("ops")],
        S.ANSWERED: [Assess(True, False), Answer(False, "no")],
    }[status]
    for step in steps:
        s = apply_suggestion(s, step, T0 + H)
    assert s.status is status
    return s


@pytest.mark.parametrize("status", list(SuggestionStatus))
@pytest.mark.parametrize("kind", list(SuggestionKind))
def test_every_suggestion_pair_follows_the_table(
    status: SuggestionStatus, kind: SuggestionKind
) -> None:
    s = suggestion_in(status)
    expected = SUGGESTION_TABLE.get((status, kind))
    if expected is None:
        with pytest.raises(InvalidTransition, match=kind.value):
            apply_suggestion(s, SUGGESTION_INPUTS[kind], T0 + 2 * H)
    else:
        assert apply_suggestion(s, SUGGESTION_INPUTS[kind], T0 + 2 * H).status is expected


def test_a_valuable_suggestion_forwarded_and_adopted() -> None:
    s = apply_suggestion(Suggestion(S.RECORDED, T0), Assess(True, True, "cheap"), T0 + H)
    s = apply_suggestion(s, Forward("security"), T0 + 2 * H)
    s = apply_suggestion(s, Answer(True, "the gate opens at 6 from Monday"), T0 + 30 * H)
    assert (s.status, s.forwarded_to, s.adopted, s.answered_at) == (
        S.ANSWERED, "security", True, T0 + 30 * H,
    )  # fmt: skip


def test_only_a_valuable_one_is_forwarded_and_only_a_forwarded_one_adopted() -> None:
    not_valuable = apply_suggestion(Suggestion(S.RECORDED, T0), Assess(True, False), T0 + H)
    with pytest.raises(CaseRefused, match="valuable"):
        apply_suggestion(not_valuable, Forward("ops"), T0 + 2 * H)
    with pytest.raises(CaseRefused, match="forward it"):
        apply_suggestion(not_valuable, Answer(True, "yes"), T0 + 2 * H)
    assert apply_suggestion(not_valuable, Answer(False, "thanks"), T0 + 2 * H).adopted is False


FOLLOW_UP_INPUTS: dict[FollowUpKind, FollowUpInput] = {
    FollowUpKind.ASSIGN: AssignReply("li"),
    FollowUpKind.RESCHEDULE: Reschedule(T0 + 48 * H, "the part is late"),
    FollowUpKind.REPLY: Reply("told the price"),
}


@pytest.mark.parametrize("status", list(FollowUpStatus))
@pytest.mark.parametrize("kind", list(FollowUpKind))
def test_every_follow_up_pair_follows_the_table(status: FollowUpStatus, kind: FollowUpKind) -> None:
    f = FollowUp(FollowUpStatus.OPEN, T0 + 24 * H)
    if status is FollowUpStatus.DONE:
        f = apply_follow_up(f, Reply(), T0 + H)
    expected = FOLLOW_UP_TABLE.get((status, kind))
    if expected is None:
        with pytest.raises(InvalidTransition, match=kind.value):
            apply_follow_up(f, FOLLOW_UP_INPUTS[kind], T0 + 2 * H)
    else:
        assert apply_follow_up(f, FOLLOW_UP_INPUTS[kind], T0 + 2 * H).status is expected


def test_a_promised_reply_is_overdue_past_its_due_time_until_given() -> None:
    f = FollowUp(FollowUpStatus.OPEN, T0 + 24 * H)
    assert not f.overdue(T0 + 24 * H) and f.overdue(T0 + 25 * H)
    f = apply_follow_up(f, Reschedule(T0 + 48 * H, "waiting for the supplier"), T0 + 20 * H)
    assert not f.overdue(T0 + 25 * H)
    f = apply_follow_up(f, AssignReply("li"), T0 + 21 * H)
    done = apply_follow_up(f, Reply("price given"), T0 + 50 * H)
    assert (done.status, done.owner, done.done_at) == (FollowUpStatus.DONE, "li", T0 + 50 * H)
    assert not done.overdue(T0 + 100 * H)
    with pytest.raises(CaseRefused):
        apply_follow_up(f, Reschedule(datetime(2026, 3, 5), "x"), T0)
