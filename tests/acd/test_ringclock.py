"""The ring-counting convention (docs/acd.md) and cadence presets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callcenter.acd.ringclock import CADENCES, Cadence, RingClock, rings_for


@pytest.mark.parametrize(
    ("name", "cycle"),
    [("cn", 5.0), ("de", 5.0), ("us", 6.0), ("uk", 3.0), ("au", 3.0), ("jp", 3.0)],
)
def test_presets_have_the_standard_cycles(name: str, cycle: float) -> None:
    assert Cadence.of(name).cycle == pytest.approx(cycle)


def test_custom_cadence_and_errors() -> None:
    assert Cadence.of([0.5, 0.5, 2.0]).cycle == 3.0
    with pytest.raises(ValueError, match="unknown cadence"):
        Cadence.of("xx")
    with pytest.raises(ValueError):
        Cadence.of([])
    with pytest.raises(ValueError):
        Cadence.of([1.0, -1.0])


@pytest.mark.parametrize(
    ("t", "ring"), [(0.0, 1), (4.999, 1), (5.0, 2), (9.99, 2), (10.0, 3), (14.9, 3), (15.0, 4)]
)
def test_ring_n_spans_n_minus_1_to_n_cycles(t: float, ring: int) -> None:
    clock = RingClock(100.0, 5.0)
    assert clock.ring_number(100.0 + t) == ring
    assert rings_for(t, 5.0) == ring


def test_next_tick_and_ring_start() -> None:
    clock = RingClock(10.0, 5.0)
    assert clock.ring_start(1) == 10.0
    assert clock.ring_start(4) == 25.0
    assert clock.next_tick(12.0) == 15.0
    assert clock.next_tick(15.0) == 20.0


@given(st.sampled_from(sorted(CADENCES)), st.integers(min_value=1, max_value=50))
def test_a_tick_computed_from_the_clock_lands_on_its_ring(name: str, ring: int) -> None:
    clock = RingClock(1234.567, Cadence.of(name).cycle)
    assert clock.ring_number(clock.ring_start(ring)) == ring
