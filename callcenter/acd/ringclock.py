"""Ring cadences and the ring clock (pure).

The convention, used everywhere in the service and its reports:

* t = 0 is the moment the service sends the caller's first 180 Ringing (for an
  agent leg: the moment the agent's phone answers 180);
* ring n spans [(n-1)·cycle, n·cycle), so ring 1 starts at t = 0;
* rings-to-answer = floor(answer_time / cycle) + 1;
* "answered within three rings" means answered before ring 4 starts, that is
  answer_time < 3·cycle.

A cadence is the on/off pattern of one ring cycle, as the national ringback
tones define it (ITU-T E.180 supplement 2); only its total length, the cycle,
matters for counting. Presets cover the common countries; any list of
on/off durations can be configured instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CADENCES", "Cadence", "RingClock"]

#: On/off patterns in seconds, one ring cycle each.
CADENCES: dict[str, tuple[float, ...]] = {
    "cn": (1.0, 4.0),  # China: 1 s on, 4 s off
    "de": (1.0, 4.0),  # Germany
    "fr": (1.5, 3.5),  # France
    "it": (1.0, 4.0),  # Italy
    "es": (1.5, 3.0),  # Spain
    "ru": (0.8, 3.2),  # Russia
    "us": (2.0, 4.0),  # United States and Canada: 2 s on, 4 s off
    "ca": (2.0, 4.0),
    "uk": (0.4, 0.2, 0.4, 2.0),  # United Kingdom: double ring
    "au": (0.4, 0.2, 0.4, 2.0),  # Australia
    "in": (0.4, 0.2, 0.4, 2.0),  # India
    "jp": (1.0, 2.0),  # Japan
}


@dataclass(frozen=True, slots=True)
class Cadence:
    """A named on/off pattern; `cycle` is the length of one ring."""

    name: str
    pattern: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.pattern or any(not (0 < d <= 60) for d in self.pattern):
            raise ValueError("a cadence is a non-empty list of durations in (0, 60] seconds")

    @property
    def cycle(self) -> float:
        return math.fsum(self.pattern)

    @classmethod
    def of(cls, spec: str | Sequence[float]) -> Cadence:
        """A preset by country code ("cn", "us", …) or a custom list of durations."""
        if isinstance(spec, str):
            key = spec.lower()
            if key not in CADENCES:
                raise ValueError(
                    f"unknown cadence {spec!r}; presets: {', '.join(sorted(CADENCES))}"
                )
            return cls(key, CADENCES[key])
        return cls("custom", tuple(float(d) for d in spec))


@dataclass(frozen=True, slots=True)
class RingClock:
    """Counts rings from `started_at` (monotonic seconds) on a `cycle`."""

    started_at: float
    cycle: float

    def elapsed(self, now: float) -> float:
        return max(0.0, now - self.started_at)

    def ring_number(self, now: float) -> int:
        """The ring in progress at `now` (1 at t = 0)."""
        return rings_for(self.elapsed(now), self.cycle)

    def ring_start(self, ring: int) -> float:
        """When ring `ring` starts (ring 1 at started_at)."""
        return self.started_at + (ring - 1) * self.cycle

    def next_tick(self, now: float) -> float:
        """When the next ring starts after `now`."""
        return self.ring_start(self.ring_number(now) + 1)


def rings_for(answer_time: float, cycle: float) -> int:
    """rings-to-answer = floor(answer_time / cycle) + 1."""
    # A small epsilon keeps a tick computed as start + n·cycle on the new ring
    # despite floating-point error.
    return math.floor(answer_time / cycle + 1e-9) + 1
