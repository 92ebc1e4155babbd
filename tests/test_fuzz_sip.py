"""bench/fuzz_sip.py's generator and harness, run briefly so they do not rot.

The run that counts (a million inputs, docs/performance.md) is on demand; this
checks that the harness builds the service's core, feeds it every kind of
input, ends with nothing held, replays from its seed, and does count what it
is there to count.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from callcenter.sip.message import Address

BENCH = Path(__file__).resolve().parent.parent / "bench"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_fuzz_under_test", BENCH / "_fuzz.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


fuzz = _load()


@pytest.mark.parametrize(("mode", "inputs"), [("standalone", 400), ("pbx", 200)])
def test_a_short_run_has_no_failure_and_ends_holding_nothing(mode: str, inputs: int) -> None:
    h = fuzz.Harness(mode, seed=3)
    h.run(inputs)
    assert [f.signature for f in h.failures] == []
    assert h.inputs == inputs and h.now > 0
    assert sum(h.gen.kinds.values()) == inputs and len(h.gen.kinds) >= 8
    assert h.outputs["Send"] > inputs // 4 and h.outputs["MessageRejected"] > 0
    h.finish()
    assert h.failures == []
    assert h.holds_nothing(), h.live()
    assert h.live()["account tx"] <= (1 if mode == "pbx" else 0)


def test_the_seed_decides_the_inputs() -> None:
    def inputs(seed: int) -> list[tuple[bytes, Address]]:
        h = fuzz.Harness("standalone", seed=seed)
        out = []
        for _ in range(60):
            item = h.gen.next()
            out.append((item.data, item.source))
            h.feed(item)
        return out

    assert inputs(5) == inputs(5)
    assert inputs(5) != inputs(6)


def test_an_exception_out_of_the_core_is_counted_with_its_input() -> None:
    h = fuzz.Harness("standalone", seed=1)

    class Broken:
        """The core, but for a defect planted in `receive` (a proxy: the
        compiled core's methods cannot be replaced)."""

        def __init__(self, core: object) -> None:
            self.core = core

        def __getattr__(self, name: str) -> object:
            return getattr(self.core, name)

        def receive(self, data: bytes, source: Address, now: float) -> list[object]:
            if b"OPTIONS" in data:
                raise KeyError("planted")
            return self.core.receive(data, source, now)  # type: ignore[attr-defined, no-any-return]

    h.core = Broken(h.core)
    h.feed(fuzz.Input(b"OPTIONS sip:x SIP/2.0\r\n\r\n", Address("127.0.0.1", 5070), "test"))
    h.feed(fuzz.Input(b"OPTIONS again", Address("127.0.0.1", 5070), "test"))
    [failure] = h.failures
    assert failure.entry == "receive" and failure.index == 0
    assert failure.error == "KeyError: 'planted'" and failure.data.startswith(b"OPTIONS sip:x")
    assert sum(h.failure_count.values()) == 2  # the same place twice: one kept, two counted


def test_an_unparseable_datagram_out_is_a_failure_unless_it_echoes_a_bad_request() -> None:
    h = fuzz.Harness("standalone", seed=1)
    dest = Address("127.0.0.1", 5070)
    h.take([fuzz.Send(b"SIP/2.0 400 Missing To header\r\nVia: x\r\n\r\n", dest)])
    assert h.failures == [] and sum(h.echoed.values()) == 1
    h.take([fuzz.Send(b"BYE sip:a@b SIP/2.0\r\n\r\n", dest)])
    [failure] = h.failures
    assert failure.entry == "output"


def test_minimize_keeps_what_the_failure_needs() -> None:
    data = b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\nFrom: y\r\nX-Bad: \x00\r\n\r\n"
    small = fuzz.minimize(data, lambda d: b"\x00" in d)
    assert small == b"\x00"
