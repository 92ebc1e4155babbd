"""Random ids for the SIP core: tags, branches, Call-IDs and cnonces."""

from __future__ import annotations

import os

__all__ = ["RandomIds", "new_id"]


class RandomIds:
    """Tags, branches, Call-IDs and cnonces: 64 random bits each (RFC 3261
    §19.3) from the kernel's generator, read 4 KiB at a time: one system call
    per 512 ids rather than one per id (a call needs about ten). A forked child
    starts on fresh bytes, never on its parent's."""

    def __init__(self) -> None:
        self._buffer = b""
        self._at = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._buffer, self._at = b"", 0

    def __call__(self) -> str:
        at = self._at
        if at + 8 > len(self._buffer):
            self._buffer, at = os.urandom(4096), 0
        self._at = at + 8
        return self._buffer[at : at + 8].hex()


#: The process's source of ids.
new_id = RandomIds()
