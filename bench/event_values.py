"""What the bus's events cost per call, against msgspec's best: building them and
the link's codec.

The events are msgspec structs (decision 0007; they were frozen dataclasses
when this was first run) and the link (`callcenter.link`) sends them as
MessagePack arrays of their values, rebuilt and checked on the floor's side.
This measures, per call as the service runs it, what each of those costs, and
what msgspec's best would cost for the same thing:

1. the events of 20,000 calls are taken from `bench/core_cpu.py`'s run of the
   pure core (the exact events, with their values, in their order);
2. CPU to build them: their own classes against array-like msgspec structs
   with the same fields (`msgspec.defstruct`);
3. CPU to encode them for the link (`Link.event`) against msgspec's
   MessagePack encoder of those structs, and to decode them (`Link.receive`)
   against msgspec's typed decoder of a tagged union of them (whole messages:
   msgspec has no streaming decoder, so the link would need framing of its own);

each per call (process CPU, best of `--repeat`), beside the core's CPU per
call from the same run. With `PYTHONPATH` set to a tree built by
`scripts/compile`, the classes are the compiled ones (as shipped).

    .venv/bin/python bench/event_values.py
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
import typing
from collections.abc import Callable
from typing import Any

import _common as c
import core_cpu
import msgspec

from callcenter.events import field_names
from callcenter.link import Link, bus_codec
from callcenter.process import settle_gc
from callcenter.sip.events import Send


class _Capture:
    """A `Switchboard` that keeps every event it returns."""

    def __init__(self, sb: Any, events: list[object]) -> None:
        self._sb = sb
        self.events = events

    def _keep(self, out: Any) -> Any:
        self.events.extend(item for item in out if not isinstance(item, Send))
        return out

    def receive(self, data: bytes, source: Any, now: float) -> Any:
        return self._keep(self._sb.receive(data, source, now))

    def on_timer(self, now: float) -> Any:
        return self._keep(self._sb.on_timer(now))

    def next_deadline(self) -> float | None:
        return self._sb.next_deadline()

    def command(self, cmd: Any, now: float) -> Any:
        return self._sb.command(cmd, now)


def capture(calls: int) -> tuple[list[object], float]:
    """The events of `calls` calls through the pure core, and its CPU per call (us)."""
    events: list[object] = []
    build = core_cpu.build
    core_cpu.build = lambda agents: _Capture(build(agents), events)  # type: ignore[assignment]
    try:
        result = core_cpu.run(calls, 200, 300)
    finally:
        core_cpu.build = build
    assert result.answered == calls == result.ended, result
    return events, result.us_per_call


def twins(classes: list[type]) -> dict[type, type[msgspec.Struct]]:
    """A msgspec struct per event class: the same fields, frozen, an array on the wire."""
    out: dict[type, type[msgspec.Struct]] = {}
    for cls in classes:
        hints = typing.get_type_hints(cls)
        out[cls] = msgspec.defstruct(
            cls.__name__,
            [(name, _hint(hints.get(name))) for name in field_names(cls)],
            frozen=True,
            array_like=True,
            tag=cls.__name__,
        )
    return out


def _hint(hint: Any) -> Any:
    """The field's type for msgspec; compiled classes keep only `type` for a union."""
    return Any if hint is None or hint is type else hint


def cpu(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    c.add_common_args(parser)
    args = parser.parse_args()
    doc, quiet, waited, facts = c.begin(args)
    settle_gc()
    events, core_us = capture(args.calls)
    per_call = len(events) / args.calls
    kinds = collections.Counter(type(e).__name__ for e in events)
    twin_of = twins(list({type(e): None for e in events}))
    values = [(type(e), [getattr(e, n) for n in field_names(type(e))]) for e in events]
    twin_values = [(twin_of[cls], v) for cls, v in values]
    structs = [cls(*v) for cls, v in twin_values]

    link = Link(bus_codec())
    wire = [link.event(n, 1.7e9 + n, e) for n, e in enumerate(events)]
    union = typing.Union[tuple(twin_of.values())]  # noqa: UP007 (built at run time)
    encoder = msgspec.msgpack.Encoder()
    decoder = msgspec.msgpack.Decoder(tuple[str, int, float, union])  # type: ignore[valid-type]
    twin_wire = [encoder.encode(("E", n, 1.7e9 + n, s)) for n, s in enumerate(structs)]
    blob, twin_blob = b"".join(wire), b"".join(twin_wire)

    def receive_all() -> None:
        assert len(Link(bus_codec()).receive(blob)) == len(events)

    rows = [
        ["build the events", cpu(lambda: [cls(*v) for cls, v in values], args.repeat),
         cpu(lambda: [cls(*v) for cls, v in twin_values], args.repeat)],
        ["encode for the link", cpu(
            lambda: [link.event(n, 1.0, e) for n, e in enumerate(events)], args.repeat),
         cpu(lambda: [encoder.encode(("E", n, 1.0, s)) for n, s in enumerate(structs)],
             args.repeat)],
        ["decode from the link", cpu(receive_all, args.repeat),
         cpu(lambda: [decoder.decode(m) for m in twin_wire], args.repeat)],
    ]  # fmt: skip
    assert decoder.decode(twin_wire[0])[3] == structs[0]
    headers = ["per call", "now (us)", "msgspec (us)", "saved (us)", "share of the core's CPU"]
    table = []
    for name, now_s, twin_s in rows:
        now_us, twin_us = 1e6 * now_s / args.calls, 1e6 * twin_s / args.calls
        table.append([
            name, c.fmt(now_us, 2), c.fmt(twin_us, 2), c.fmt(now_us - twin_us, 2),
            f"{100 * (now_us - twin_us) / core_us:.1f} %",
        ])  # fmt: skip
    compiled = "compiled" if _compiled(type(events[0])) else "pure"
    now_bytes, twin_bytes = len(blob) / args.calls, len(twin_blob) / args.calls
    print(f"{per_call:.1f} events per call ({dict(kinds.most_common())})")
    print(f"core CPU per call: {core_us:.0f} us ({compiled}); link bytes per call: "
          f"{now_bytes:.0f} now, {twin_bytes:.0f} msgspec")  # fmt: skip
    print(c.text_table(headers, table))
    if doc is not None:
        body = "\n".join([
            f"Command: `{c.command_line()}`",
            "",
            c.machine_block(facts, quiet, waited),
            f"- {args.calls} calls through the core ({compiled}): {per_call:.1f} events per "
            f"call; the core's CPU {core_us:.0f} us per call; on the link "
            f"{now_bytes:.0f} bytes per call now, {twin_bytes:.0f} with msgspec. "
            f"Best of {args.repeat}.",
            "",
            c.md_table(headers, table),
        ])  # fmt: skip
        c.update_doc(f"event-values-{compiled}", body, doc)
    return 0


def _compiled(cls: type) -> bool:
    module = sys.modules.get(cls.__module__)
    return bool(module and getattr(module, "__file__", "").endswith(".so"))


if __name__ == "__main__":
    sys.exit(main())
