"""A first-in first-out file of numbered byte strings: the outbox's overflow.

The call process keeps the events the floor process has not acknowledged in
memory (`callcenter.link.Outbox`), up to a bound. When the floor process is
down or far behind for longer than that bound lasts, the events that follow
wait here, on disk, in order, and go back into the outbox (and onto the
link) as acknowledgements make room. Nothing is dropped while the disk takes
writes.

Each entry is a header, the sequence number and the length (little-endian
unsigned 64 and 32 bits), then the bytes. The file is written through a
buffer and not fsync'd: it is the overflow of a memory queue, and a crash of
the call process loses the memory queue anyway; what a previous run left
(its name carries that run's id) is read back at the next start
(`read_all`) and its records journaled. Once everything written has been
read back the file is removed, so an empty spool takes no disk.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final

__all__ = ["Spool", "read_all"]

_HEADER: Final = struct.Struct("<QI")


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: BinaryIO | None = None
        self._reader: BinaryIO | None = None
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, seq: int, data: bytes) -> None:
        """Keep one entry at the end; raises OSError if the disk refuses it."""
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = open(self.path, "ab")  # noqa: SIM115 (kept open until emptied)
        self._writer.write(_HEADER.pack(seq, len(data)) + data)
        self._count += 1

    def take(self, limit: int) -> list[tuple[int, bytes]]:
        """Up to `limit` entries from the front, in order, no longer kept here."""
        if not self._count or limit <= 0:
            return []
        assert self._writer is not None
        self._writer.flush()
        if self._reader is None:
            self._reader = open(self.path, "rb")  # noqa: SIM115
        taken: list[tuple[int, bytes]] = []
        while len(taken) < min(limit, self._count):
            seq, size = _HEADER.unpack(self._reader.read(_HEADER.size))
            taken.append((seq, self._reader.read(size)))
        self._count -= len(taken)
        if not self._count:
            self.clear()
        return taken

    def clear(self) -> None:
        """Forget everything and remove the file."""
        for file in (self._reader, self._writer):
            if file is not None:
                file.close()
        self._reader = self._writer = None
        self._count = 0
        self.path.unlink(missing_ok=True)


def read_all(path: Path) -> Iterator[tuple[int, bytes]]:
    """The entries of a spool file a previous run left, in order; a last entry
    cut short (the process died writing it) is left out."""
    with open(path, "rb") as file:
        while len(header := file.read(_HEADER.size)) == _HEADER.size:
            seq, size = _HEADER.unpack(header)
            data = file.read(size)
            if len(data) < size:
                return
            yield seq, data
