"""Shared fixtures. Keep this small: package-specific fixtures live next to their tests."""

from __future__ import annotations

import os
import sys

import pytest

# The compiled pass (scripts/test): CALLCENTER_TEST_COMPILED names a copy of
# the package built by scripts/compile. pytest has put the repository first on
# sys.path, so put the copy before it, and make sure the call path really is
# the compiled one: a pass that quietly tested pure Python would prove nothing.
_compiled = os.environ.get("CALLCENTER_TEST_COMPILED")
if _compiled:
    sys.path.insert(0, _compiled)
    import callcenter.acd.engine
    import callcenter.call_side.runtime
    import callcenter.calls.switchboard
    import callcenter.sip.parser

    for _module in (
        callcenter.sip.parser,
        callcenter.calls.switchboard,
        callcenter.acd.engine,
        callcenter.call_side.runtime,
    ):
        if not (_module.__file__ or "").startswith(_compiled) or not _module.__file__.endswith(
            ".so"
        ):
            raise RuntimeError(f"{_module.__name__} is not the compiled module: {_module.__file__}")


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
