"""Shared fixtures. Keep this small: package-specific fixtures live next to their tests."""

from __future__ import annotations

import pytest


class ManualClock:
    """A `callcenter.clock.Clock` that moves only when a test says so."""

    def __init__(self, monotonic: float = 1000.0, wall: float = 1_700_000_000.0) -> None:
        self._monotonic = monotonic
        self._wall = wall

    def monotonic(self) -> float:
        return self._monotonic

    def wall(self) -> float:
        return self._wall

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._monotonic += seconds
        self._wall += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
