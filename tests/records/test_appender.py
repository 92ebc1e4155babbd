"""The journal appender: the call process's records made durable where they are born."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from callcenter.acd.events import CallEnded, CallQueued, RingTicked
from callcenter.bus import EventBus
from callcenter.records.appender import JournalAppender, record_line
from callcenter.records.journal import Journal, decode, encode
from callcenter.records.store import to_record

T0 = 1_763_900_000.0


def lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_bytes().split(b"\n")[:-1]:
        record = decode(line)
        assert record is not None, line
        out.append(record)
    return out


@pytest.fixture
async def tapped(tmp_path: Path) -> Any:
    bus: EventBus[Any] = EventBus()
    appender = JournalAppender(tmp_path / "journal", "run1")
    appender.start()
    bus.tap(appender)
    yield bus, appender
    await appender.close()


async def test_a_flush_writes_the_records_held_in_one_write(tapped: Any) -> None:
    bus, appender = tapped
    bus.publish(CallQueued("c1", "hotline", "138", 1), T0)
    bus.publish(RingTicked("c1", 1), T0 + 1)  # not a record
    bus.publish(CallEnded("c1", "hotline", "a1", "caller", 2.0), T0 + 2)
    (segment,) = appender.journal.segments()
    assert segment.read_bytes() == b""  # held until the flush
    bus.flush()
    records = lines(segment)
    assert [(r["key"], r["kind"], r["at"]) for r in records] == [
        ("run1:1", "CallQueued", T0), ("run1:3", "CallEnded", T0 + 2),
    ]  # fmt: skip
    assert records[0]["event"]["caller"] == "138"
    assert appender.appended == 2 and appender.held == 0


async def test_events_published_outside_a_step_are_written_at_the_next_loop_turn(
    tapped: Any,
) -> None:
    bus, appender = tapped
    bus.publish(CallQueued("c1", "hotline", "138", 1), T0)  # no flush follows
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    (segment,) = appender.journal.segments()
    assert [r["key"] for r in lines(segment)] == ["run1:1"]


async def test_segments_rotate_by_size_each_of_whole_lines(tmp_path: Path) -> None:
    bus: EventBus[Any] = EventBus()
    appender = JournalAppender(tmp_path, "r", rotate_bytes=1000)
    appender.start()
    bus.tap(appender)
    try:
        for n in range(40):
            bus.publish(CallQueued(f"c{n}", "hotline", "138", 1), T0 + n)
            bus.flush()
        segments = appender.journal.segments()
        assert len(segments) > 3
        keys = [r["key"] for s in segments for r in lines(s)]
        assert keys == [f"r:{n}" for n in range(1, 41)]
        # Sealed once past the size, with the flush that passed it; the newest is open.
        assert all(1000 <= s.stat().st_size < 1000 + 300 for s in segments[:-1])
        assert segments[-1].stat().st_size < 1000
    finally:
        await appender.close()


async def test_the_journal_is_fsyncd_in_its_own_thread_not_on_the_loop(
    tapped: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus, appender = tapped
    threads: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        threads.append(threading.current_thread().name)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    bus.publish(CallQueued("c1", "hotline", "138", 1), T0)
    bus.flush()
    await asyncio.sleep(appender.sync_interval * 4)
    assert threads and all(name.startswith("journal-sync") for name in threads)
    assert appender.sync_failures == 0


async def test_beyond_the_memory_bound_records_are_dropped_and_counted(tmp_path: Path) -> None:
    bus: EventBus[Any] = EventBus()
    appender = JournalAppender(tmp_path, "r", hold_limit=2)
    bus.tap(appender)  # not started: nothing is written, as when the disk refuses
    for n in range(5):
        bus.publish(CallQueued(f"c{n}", "hotline", "138", 1), T0 + n)
    assert (appender.held, appender.lost) == (2, 3)


# A child process whose file size limit (RLIMIT_FSIZE) makes the kernel refuse
# the journal part way through a write, as a full disk does; the limit is lifted
# and the held records go out at the next flush.
_REFUSING_DISK = r"""
import asyncio, json, resource, signal, sys
from pathlib import Path
from callcenter.acd.events import CallQueued
from callcenter.bus import EventBus
from callcenter.records.appender import JournalAppender

async def main(directory):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead
    bus = EventBus()
    appender = JournalAppender(Path(directory), "r", retry_interval=0.05)
    appender.start()
    bus.tap(appender)
    bus.publish(CallQueued("c0", "hotline", "138", 1), 1.0)
    bus.flush()
    size = (Path(directory) / "journal-000001.log").stat().st_size
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size + 150, hard))
    for n in range(1, 6):
        bus.publish(CallQueued(f"c{n}", "hotline", "138", 1), 1.0 + n)
    bus.flush()  # part of the lines fit, then the kernel refuses
    refused = dict(held=appender.held, refused=appender.refused, error=appender.error,
                   size=(Path(directory) / "journal-000001.log").stat().st_size, first=size)
    for n in range(6, 56):  # steps while the disk refuses: no write tried for each
        bus.publish(CallQueued(f"c{n}", "hotline", "138", 1), 1.0 + n)
        bus.flush()
    refused.update(later_refused=appender.refused, later_held=appender.held)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    await asyncio.sleep(0.2)  # the retry
    await appender.close()
    print(json.dumps(dict(refused=refused, held=appender.held, lost=appender.lost,
                          appended=appender.appended)))

asyncio.run(main(sys.argv[1]))
"""


def test_a_disk_that_refuses_part_way_loses_no_record_and_leaves_no_half_line(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _REFUSING_DISK, str(tmp_path)],
        capture_output=True, text=True, timeout=30,
        cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    refused = result["refused"]
    assert refused["held"] == 5 and refused["refused"] == 1 and refused["error"]
    assert refused["size"] == refused["first"]  # cut back to its last whole line
    # Held in memory, not tried at every step: only the retry timer writes again.
    assert (refused["later_refused"], refused["later_held"]) == (1, 55)
    assert (result["held"], result["lost"], result["appended"]) == (0, 0, 56)
    records = [r for s in Journal(tmp_path).segments() for r in lines(s)]
    assert [r["event"]["call_id"] for r in records] == [f"c{n}" for n in range(56)]


def test_a_record_line_is_what_the_record_encoded_gives_every_recorded_event() -> None:
    """msgspec writes the line straight from the event (the call process's hot path);
    it must read back as the record `to_record` makes (the bytes may differ: msgspec
    writes 1e-7 where json writes 1e-07)."""
    from callcenter.acd.events import (
        AgentStateChanged,
        CallAbandoned,
        CallAnswered,
        CallOffered,
        CallOverflowed,
        CallRejected,
        CallTransferred,
        OfferEnded,
        TargetBreached,
    )  # fmt: skip

    events = [
        CallQueued("c1@pbx", "hotline", "+8613800000000", 1, "4000"),
        CallOffered("c1@pbx", "hotline", "a1", "l1", "138", "李雷 \"Li\"", 1),
        CallOffered("c1@pbx", "hotline", "a1", "l1", "138", None, 2),
        RingTicked("c1@pbx", 1, "a1", "l1"),
        OfferEnded("c1@pbx", "a1", "l1", "missed", 2, 9.123456789),
        CallAnswered("c1@pbx", "hotline", "a1", "l2", 12.25, 3, 1, True),
        TargetBreached("c1@pbx", "hotline", 3, "ring-all"),
        CallAbandoned("c1@pbx", "hotline", 0.1, 1, "queued", None, True),
        CallEnded("c1@pbx", "hotline", "a1", "caller", 60.0, 12.25),
        CallTransferred("c1@pbx", "hotline", "a1", "queue", "sales", 3.5),
        CallOverflowed("c1@pbx", "hotline", "max-wait", "number", "95588"),
        CallRejected("c2@pbx", "9999", "no queue"),
        AgentStateChanged("a1", "not-ready", "ready", "午饭", 1e-7),
        # A lone surrogate (text decoded with surrogateescape) has no UTF-8 form:
        # msgspec refuses it, and the line is written the slow way, as before.
        CallOffered("c3@pbx", "hotline", "a1", "l1", "138", "x\udcff", 1),
    ]
    for seq, event in enumerate(events, 1):
        wall = T0 + seq / 7
        line = record_line("run", seq, wall, event)
        assert line.endswith(b"\n")
        assert decode(line[:-1]) == decode(encode(to_record("run", seq, wall, event))[:-1])
        assert decode(line[:-1]) == to_record("run", seq, wall, event)


async def test_the_disk_refusal_retried_later_is_logged_apart_from_the_call_that_met_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry ran in the context of the step that met the full disk, so every
    refusal logged for as long as the disk was full named that call (seen on a
    really full disk); and nothing said when the disk took the journal again."""
    import structlog
    from structlog.testing import capture_logs

    from callcenter.records import appender as module

    full = True
    write_all = module._write_all

    def quota(fd: int, data: bytes) -> None:  # the disk's space, used up
        if full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        write_all(fd, data)

    monkeypatch.setattr(module, "_write_all", quota)
    bus: EventBus[Any] = EventBus()
    appender = JournalAppender(tmp_path, "r", retry_interval=0.02)
    appender.start()
    bus.tap(appender)
    try:
        with capture_logs(processors=[structlog.contextvars.merge_contextvars]) as logs:
            with structlog.contextvars.bound_contextvars(call_id="c1"):
                bus.publish(CallQueued("c1", "hotline", "138", 1), T0)
                bus.flush()  # the step of call c1 meets the full disk
            while appender.refused < 4:
                await asyncio.sleep(0.01)
            full = False
            while appender.held:
                await asyncio.sleep(0.01)
    finally:
        await appender.close()
    refusals = [e for e in logs if e["event"].startswith("the disk refused")]
    assert len(refusals) >= 4
    assert [e.get("call_id") for e in refusals[1:]] == [None] * (len(refusals) - 1)
    (back,) = [e for e in logs if e["event"].startswith("the disk takes")]
    assert back["records"] == 1 and back["log_level"] == "warning"
    assert [r["key"] for r in lines(appender.journal.segments()[-1])] == ["r:1"]
