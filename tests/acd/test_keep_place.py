"""Keeping an abandoned caller's place (issue 20): a caller who rings again
within the queue's keep_place of abandoning goes ahead of later callers."""

from __future__ import annotations

from callcenter.acd.events import CallArrived, CallerHungUp, CallOffered, SetNotReady, SetReady
from tests.acd.test_engine import Floor


def offered_first(keep_place: float, again_at: float, caller: str = "13800000001") -> str:
    f = Floor("a1", keep_place=keep_place, max_wait=3600.0)
    f.do(SetNotReady("a1", "break"))  # nobody free: callers wait in line
    f.do(CallArrived("c1", "4000", caller), at=0.0)
    f.do(CallArrived("c2", "4000", "13800000002"), at=1.0)  # a later caller
    f.do(CallerHungUp("c1"), at=5.0)  # the first gives up ...
    f.do(CallArrived("c3", "4000", caller), at=again_at)  # ... and rings again
    f.do(SetReady("a1"), at=again_at + 1.0)
    [first] = f.of(CallOffered)
    return str(first.call_id)


def test_a_caller_who_rings_again_soon_takes_back_their_place() -> None:
    assert offered_first(keep_place=600.0, again_at=20.0) == "c3"


def test_without_keep_place_they_go_to_the_back() -> None:
    assert offered_first(keep_place=0.0, again_at=20.0) == "c2"


def test_the_place_is_kept_for_keep_place_only() -> None:
    assert offered_first(keep_place=60.0, again_at=70.0) == "c2"


def test_a_withheld_number_keeps_no_place() -> None:
    assert offered_first(keep_place=600.0, again_at=20.0, caller="anonymous") == "c2"


def test_the_place_is_taken_once() -> None:
    f = Floor("a1", keep_place=600.0, max_wait=3600.0)
    f.do(SetNotReady("a1", "break"))
    f.do(CallArrived("c1", "4000", "13800000001"), at=0.0)
    f.do(CallArrived("c2", "4000", "13800000002"), at=1.0)
    f.do(CallerHungUp("c1"), at=2.0)
    f.do(CallArrived("c3", "4000", "13800000001"), at=3.0)  # back in c1's place
    f.do(CallerHungUp("c3"), at=4.0)  # gives up again: the place is kept again
    f.do(CallArrived("c4", "4000", "13800000001"), at=5.0)
    f.do(CallArrived("c5", "4000", "13800000001"), at=6.0)  # a second line: no place left
    f.do(SetReady("a1"), at=7.0)
    [first] = f.of(CallOffered)
    assert first.call_id == "c4"


def test_the_place_is_counted_from_the_first_abandon() -> None:
    """Found in review: each abandon renewed the time, so a caller ringing and
    hanging up every 9 minutes kept a place from hours before for ever."""
    f = Floor("a1", keep_place=600.0, max_wait=7200.0)
    f.do(SetNotReady("a1", "break"))
    f.do(CallArrived("c1", "4000", "13800000001"), at=0.0)
    f.do(CallerHungUp("c1"), at=10.0)  # the place is kept from here, for 600 s
    f.do(CallArrived("c2", "4000", "13800000002"), at=20.0)  # a later caller waits on
    f.do(CallArrived("c3", "4000", "13800000001"), at=550.0)  # back in time: c1's place
    f.do(CallerHungUp("c3"), at=560.0)
    f.do(CallArrived("c4", "4000", "13800000001"), at=1100.0)  # 1090 s after the first
    f.do(SetReady("a1"), at=1101.0)
    [first] = f.of(CallOffered)
    assert first.call_id == "c2"
