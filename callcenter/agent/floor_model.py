"""The floor as the desktop reads it: the read model of acd/view.py, kept current.

`FloorView` folds the ACD's numbered events onto one numbered snapshot; this
adapter takes that snapshot from the ACD (`CallControl.snapshot`) when it has
none, when the view went stale (a gap in the events, an administrative
change: `changed`) or is `refresh_every` seconds old. Events that arrive
while a snapshot is on its way are kept and folded onto it, those after the
snapshot's number counting. A control whose snapshots are not numbered
(`seq` 0) is asked every time.
"""

from __future__ import annotations

import asyncio
from typing import Any

from callcenter.acd.engine import AcdSnapshot
from callcenter.acd.view import FloorView
from callcenter.bus import Published
from callcenter.clock import Clock
from callcenter.control import CallControl

__all__ = ["FloorModel"]


class FloorModel:
    def __init__(self, control: CallControl, clock: Clock, refresh_every: float = 60.0) -> None:
        self.control = control
        self.refresh_every = refresh_every
        self._clock = clock
        self._view: FloorView | None = None
        self._taken = 0.0
        self._lock = asyncio.Lock()
        self._waiting: list[Published[Any]] | None = None  # consumed while a snapshot comes

    def observe(self, p: Published[Any]) -> None:
        if self._view is not None:
            self._view.observe(p.seq, p.event, p.wall)
        if self._waiting is not None:
            self._waiting.append(p)

    def changed(self) -> None:
        """An administrative change: the next read takes a new snapshot."""
        self._view = None

    async def snapshot(self) -> AcdSnapshot | None:
        """The floor now (None while the call path is starting)."""
        async with self._lock:
            view = self._view
            if view is None or view.stale or self._clock.wall() - self._taken > self.refresh_every:
                self._view = None
                self._waiting = []
                try:
                    snapshot = await self.control.snapshot()
                finally:
                    waited, self._waiting = self._waiting, None
                if snapshot is None or snapshot.seq == 0:
                    return snapshot
                now = self._clock.wall()  # the snapshot's moment: when its reply came
                view = FloorView(snapshot, now)
                for p in waited:
                    view.observe(p.seq, p.event, p.wall)
                self._view, self._taken = view, now
            return view.snapshot(self._clock.wall())
