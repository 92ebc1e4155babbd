"""The journal of call records: append-only, checksummed segment files.

Theory of operation
-------------------
Every record is a line (decision 0005)::

    <crc32 of the JSON, 8 hex digits> <JSON object>\n

The call process appends them as its events are published
(`records.appender`), into numbered segments (``journal-NNNNNN.log``); a
segment is sealed once a newer one exists. The records writer
(`records.writer`) reads them back in order (`read`, from an offset, whole
lines only) into PostgreSQL and removes a sealed segment once it is written.
A line whose checksum does not match, or bytes after the last newline of a
sealed segment, are what a crash in the middle of a write leaves: they are
skipped and reported, never raised, because a half written record was never
flushed whole. Every record carries an idempotency key, so writing a line
the database already has inserts nothing twice.

`append` writes and fsyncs a batch at once into the newest segment: the
``requeue`` command's way in, run while the service is stopped.

Records PostgreSQL refuses (bad data: it would refuse them again) are set
aside in ``rejected.jsonl`` in the same directory, appended and fsync'd: one
JSON object per line, the record with when and why, no checksum, so that an
operator can read and fix them. `requeue` puts fixed ones back in the
journal (``python -m callcenter.records.journal requeue``), for the next start
to write.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

__all__ = ["Journal", "JournalEntries", "SegmentRead", "fsync_dir"]

_SEGMENT = "journal-{:06d}.log"
REJECTED = "rejected.jsonl"


@dataclass(slots=True)
class JournalEntries:
    """What `Journal.read_all` found: the records in order, and what it skipped."""

    records: list[dict[str, Any]] = field(default_factory=list)
    segments: list[Path] = field(default_factory=list)
    torn: int = 0  # a last line cut short by a crash
    corrupt: int = 0  # a complete line whose checksum does not match


def _json(value: dict[str, Any]) -> bytes:
    # A lone surrogate (text decoded with "surrogateescape", or a JSON "\ud800"
    # from a client) has no UTF-8 form: written as its JSON escape, it reads
    # back as the same string instead of failing the whole append.
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return text.encode("utf-8", "backslashreplace")


def encode(record: dict[str, Any]) -> bytes:
    body = _json(record)
    return b"%08x %s\n" % (zlib.crc32(body), body)


_DECODER = msgspec.json.Decoder()


def decode(line: bytes) -> dict[str, Any] | None:
    """The record of one complete line, or None if its checksum or JSON is bad."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    body = line[9:]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
    except ValueError:
        return None
    try:
        record = _DECODER.decode(body)
    except msgspec.DecodeError:
        try:  # what msgspec refuses and json takes: a lone surrogate's escape, say
            record = json.loads(body)
        except ValueError:
            return None
    return record if isinstance(record, dict) else None


@dataclass(slots=True)
class SegmentRead:
    """What `Journal.read` found in one segment from an offset on."""

    records: list[dict[str, Any]]
    end: int  # the offset after the last whole line read
    corrupt: int  # whole lines whose checksum or JSON is bad (skipped)
    tail: int  # bytes after the last whole line (a line being written, or torn)
    eof: bool  # the read reached the end of the file


class Journal:
    """Segment files in `directory`; the newest is the one appended to."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        numbers = [self._number(p) for p in directory.glob("journal-*.log")]
        self._current = max((n for n in numbers if n is not None), default=0) + 1

    @staticmethod
    def _number(path: Path) -> int | None:
        try:
            return int(path.stem.split("-", 1)[1])
        except (IndexError, ValueError):
            return None

    @property
    def current(self) -> Path:
        """The segment `append` writes to."""
        return self.segment(self._current)

    @property
    def rejected(self) -> Path:
        """The file of records PostgreSQL refused."""
        return self.directory / REJECTED

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        """Append and fsync; returns the number of records written."""
        return _append(self.current, b"".join(encode(r) for r in records))

    def set_aside(self, rejections: Iterable[dict[str, Any]]) -> int:
        """Append to the rejected file and fsync; returns the number of lines."""
        return _append(self.rejected, b"".join(_json(r) + b"\n" for r in rejections))

    def requeue(self, rejected: Path) -> int:
        """Append the records of a rejected file (fixed by an operator) to the journal.

        Each line's ``record`` goes back, in the file's order; a key that comes
        again (a record set aside twice) goes back once, from its last line.
        Run it while the service is stopped: the next start replays the journal
        first. Returns the number of records; a line that is not a rejection
        with a keyed record raises ValueError naming it, and then nothing is
        appended."""
        records: dict[str, dict[str, Any]] = {}
        for number, line in enumerate(rejected.read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)["record"]
                key = record["key"]
            except (ValueError, LookupError, TypeError) as exc:
                raise ValueError(f"{rejected}:{number}: not a rejected record ({exc})") from exc
            records[str(key)] = record
        return self.append(records.values())

    def next_number(self) -> int:
        """The number of a new segment after every one there is (the appender's first)."""
        numbers = [self._number(p) for p in self.directory.glob("journal-*.log")]
        return max((n for n in numbers if n is not None), default=0) + 1

    def segment(self, number: int) -> Path:
        return self.directory / _SEGMENT.format(number)

    @staticmethod
    def read(path: Path, offset: int, limit: int) -> SegmentRead:
        """The whole lines of `path` from `offset` on, reading at most `limit`
        bytes (at least one whole line, however long)."""
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read(limit)
            while data and b"\n" not in data:  # a line longer than `limit`: all of it
                more = f.read(limit)
                if not more:
                    break
                data += more
            eof = not f.read(1)
        end = data.rfind(b"\n") + 1
        records: list[dict[str, Any]] = []
        corrupt = 0
        for line in data[: end - 1].split(b"\n") if end else ():
            record = decode(line)
            if record is None:
                corrupt += 1
            else:
                records.append(record)
        return SegmentRead(records, offset + end, corrupt, len(data) - end, eof)

    def segments(self) -> list[Path]:
        found = [(self._number(p), p) for p in self.directory.glob("journal-*.log")]
        return [p for n, p in sorted((n, p) for n, p in found if n is not None)]

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.segments() if p.exists())

    def read_all(self) -> JournalEntries:
        """Every segment's records, oldest first (the last line of a segment
        without its newline counted as torn), without changing anything."""
        entries = JournalEntries(segments=self.segments())
        for path in entries.segments:
            part = self.read(path, 0, max(path.stat().st_size, 1))
            entries.records += part.records
            entries.corrupt += part.corrupt
            entries.torn += 1 if part.tail else 0
        return entries

    def find(self, kind: str) -> Iterator[dict[str, Any]]:
        """The records of one kind in every segment, oldest first, read line by
        line (a journal that grew through a long outage is not held in memory);
        only lines that name `kind` are decoded, bad ones skipped."""
        needle = kind.encode()
        for path in self.segments():
            try:
                with path.open("rb") as f:
                    for line in f:
                        if needle in line and line.endswith(b"\n"):
                            record = decode(line[:-1])
                            if record is not None and record.get("kind") == kind:
                                yield record
            except FileNotFoundError:  # removed by the writer meanwhile
                continue

    def __iter__(self) -> Iterator[Path]:
        return iter(self.segments())


def _append(path: Path, data: bytes) -> int:
    """Append complete lines to `path` and fsync; returns the number of lines."""
    if not data:
        return 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    return data.count(b"\n")


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def main(argv: list[str] | None = None) -> int:
    """``python -m callcenter.records.journal requeue FIXED.jsonl JOURNAL_DIR``."""
    parser = argparse.ArgumentParser(prog="python -m callcenter.records.journal")
    commands = parser.add_subparsers(dest="command", required=True)
    requeue = commands.add_parser(
        "requeue",
        help="put the records of a (fixed) rejected file back in the journal; "
        "run it while the service is stopped",
    )
    requeue.add_argument("rejected", type=Path, help="a rejected file, e.g. a fixed copy")
    requeue.add_argument("journal", type=Path, help="the journal directory (<data_dir>/journal)")
    args = parser.parse_args(argv)
    try:
        count = Journal(args.journal).requeue(args.rejected)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{count} records appended to the journal in {args.journal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
