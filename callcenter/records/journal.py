"""An append-only, fsync'd, checksummed journal of records not yet in the database.

Theory of operation
-------------------
When PostgreSQL is down or slow, records are appended here instead, one per
line::

    <crc32 of the JSON, 8 hex digits> <JSON object>\\n

`append` writes a batch and fsyncs once, so a record the writer has
acknowledged survives a crash or a power cut. `replay` reads the lines back in
order. A line whose checksum does not match, or a last line without its
newline, is what a crash in the middle of a write leaves: it is skipped and
reported (`JournalEntries.torn`, `corrupt`), never raised, because a half
written record was never acknowledged. Once every entry of a replay is in the
database, `commit_replay` truncates the file; entries appended meanwhile go to
the next file segment, so nothing written during a replay is lost.

Every record carries an idempotency key, so replaying an entry the database
already has (the process died between the insert and the truncate) inserts
nothing twice.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Journal", "JournalEntries"]

_SEGMENT = "journal-{:06d}.log"


@dataclass(slots=True)
class JournalEntries:
    """What a replay found: the records in order, and what had to be skipped."""

    records: list[dict[str, Any]] = field(default_factory=list)
    segments: list[Path] = field(default_factory=list)
    torn: int = 0  # a last line cut short by a crash
    corrupt: int = 0  # a complete line whose checksum does not match


def encode(record: dict[str, Any]) -> bytes:
    body = json.dumps(record, separators=(",", ":"), ensure_ascii=False, default=str).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def decode(line: bytes) -> dict[str, Any] | None:
    """The record of one complete line, or None if its checksum or JSON is bad."""
    if len(line) < 10 or line[8:9] != b" ":
        return None
    body = line[9:]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        record = json.loads(body)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


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
        return self.directory / _SEGMENT.format(self._current)

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        """Append and fsync; returns the number of records written."""
        data = b"".join(encode(r) for r in records)
        if not data:
            return 0
        fd = os.open(self.current, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        return data.count(b"\n")

    def segments(self) -> list[Path]:
        found = [(self._number(p), p) for p in self.directory.glob("journal-*.log")]
        return [p for n, p in sorted((n, p) for n, p in found if n is not None)]

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.segments() if p.exists())

    def start_replay(self) -> JournalEntries:
        """Seal the current segment and read every sealed one, oldest first."""
        sealed = self.segments()
        self._current += 1  # new appends go to a fresh segment
        entries = JournalEntries(segments=sealed)
        for path in sealed:
            self._read(path, entries)
        return entries

    def commit_replay(self, entries: JournalEntries) -> None:
        """The replayed records are stored: remove their segments."""
        for path in entries.segments:
            path.unlink(missing_ok=True)
        _fsync_dir(self.directory)

    @staticmethod
    def _read(path: Path, entries: JournalEntries) -> None:
        data = path.read_bytes()
        lines = data.split(b"\n")
        tail = lines.pop()  # after the last newline: b"" unless the write was torn
        if tail:
            entries.torn += 1
        for line in lines:
            record = decode(line)
            if record is None:
                entries.corrupt += 1
            else:
                entries.records.append(record)

    def __iter__(self) -> Iterator[Path]:
        return iter(self.segments())


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
