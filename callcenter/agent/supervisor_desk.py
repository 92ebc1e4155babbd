"""The supervisors' side of the desktop: the floor's feed, breach alerts and the board.

Theory of operation
-------------------
Supervisors get the floor coalesced (feed.py): one `floor.batch` every
`feed_every` seconds with the latest state of each agent and the latest event
of each call, the same text for all of them, written to one supervisor at a
time over half the period (`_fan_out`); a breach of the ring target goes to
them at once, and the rest of a burst of breaches a moment later in one
`floor.alerts` (`AlertBurst`).

They get `board.figures` (board.py) whole on connect (or when they ask), then
every `figures_every` seconds only the rows that changed: computed and
serialised once per period whatever the number of supervisors, so its cost is
bounded by the floor's size, and what goes out by its changes. A supervisor
who connects between two periods gets the board as of the last one, which the
next change applies to (`BoardFeed`). With the records on, "today" before
this process started is read from the database (`history`) at start and every
few minutes; the figures since are counted from the bus (`FloorTally`).

A team leader's socket is narrowed to their team (team_view.py): one board
feed, one batch text per team that has a client, made from the same figures
and the same batch as the supervisors'.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

import structlog
from aiohttp import WSCloseCode

from callcenter.acd.engine import AcdSnapshot
from callcenter.acd.events import TargetBreached
from callcenter.clock import Clock
from callcenter.events import event_fields
from callcenter.records.stats import AgentStats, QueueFigures
from callcenter.tasks import cancel_and_wait, run_in_steps

from .board import WAITING_SHOWN, AgentCounts, BoardFeed, FloorTally, QueueCounts
from .clients import Client
from .feed import ALERT_WINDOW, AlertBurst, FloorFeed, alert
from .floor_model import FloorModel
from .messages import Board, BoardFigures, Feed, Figures, FloorAlerts
from .replies import BoardReply, Ok, SupervisorHello, encode_reply
from .team_view import members, narrow_batch, narrow_board, narrow_figures

__all__ = ["History", "SupervisorDesk"]

log = structlog.get_logger("callcenter.desktop")

HISTORY_EVERY = 300.0  # seconds between reads of today's figures from the records
HISTORY_RETRY = 30.0  # after a failed read
# Supervisors' batches and board changes go out spread over this part of their period.
SPREAD = 0.5

# Today's figures from the records for [start, end) and these agents.
History = Callable[
    [datetime, datetime, list[str]], Awaitable[tuple[list[QueueFigures], list[AgentStats]]]
]


class SupervisorDesk:
    def __init__(
        self,
        floor: FloorModel,
        clock: Clock,
        *,
        agent_ids: Callable[[], list[str]],
        history: History | None = None,
        figures_every: float = 2.0,
        feed_every: float = 0.5,
        alert_window: float = ALERT_WINDOW,
        waiting_shown: int = WAITING_SHOWN,
        tz: tzinfo | None = None,
    ) -> None:
        self.floor = floor
        self._clock = clock
        self._agent_ids = agent_ids  # every agent the desktop knows (when the floor is not known)
        self._records = history
        self._figures_every = figures_every
        self._feed_every = feed_every
        self.clients: list[Client] = []
        self._feed = FloorFeed()
        self.alerts = AlertBurst(alert_window)
        self._alert_timer: asyncio.TimerHandle | None = None
        # One board as each view has it: the whole floor's (None), each team's.
        self._board_feeds: dict[str | None, BoardFeed] = {}
        self._tasks: list[asyncio.Task[None]] = []
        # Counting starts now: the records cover the day before.
        self.tally = FloorTally(self._clock.wall(), tz=tz, waiting_shown=waiting_shown)

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._push_figures(), name="desktop-board"),
            loop.create_task(self._push_feed(), name="desktop-feed"),
        ]
        if self._records is not None:
            self._tasks.append(loop.create_task(self._read_history(), name="desktop-history"))

    async def stop(self) -> None:
        if self._alert_timer is not None:
            self._alert_timer.cancel()
        await cancel_and_wait(self._tasks)
        for client in list(self.clients):
            await client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    # -- connections ----------------------------------------------------------------------

    async def connect(self, client: Client) -> None:
        """Greet the supervisor with the floor, then the whole board; from then on
        the client gets what the others of its view get."""
        board = await self.board(client)
        feed = await self._start_board(client.view)
        # From here on nothing waits: hello, the whole board as of the last
        # change sent to the others, then this client gets what they get. (The
        # period may have dropped `feed` meanwhile, no client of its view being
        # connected yet: the next period then sends this client a whole board.)
        hello = SupervisorHello(role=client.login.role, team=client.team, board=board)
        client.send(encode_reply(hello))
        client.send(feed.whole())
        self.clients.append(client)

    def disconnect(self, client: Client) -> None:
        with contextlib.suppress(ValueError):
            self.clients.remove(client)

    async def answer(
        self, client: Client, message: Board | Feed | Figures
    ) -> BoardReply | Ok | None:
        """A supervisor's request to the desktop itself (not to the ACD)."""
        match message:
            case Board():
                return BoardReply(ref=message.ref, board=await self.board(client))
            case Feed():
                client.calls = message.calls
                return Ok(ref=message.ref)
            case Figures():
                client.send((await self._start_board(client.view)).whole())
        return None

    # -- events ---------------------------------------------------------------------------

    def observe(self, event: object, wall: float) -> None:
        self.tally.observe(event, wall)
        if not self.clients:
            return
        self._feed.add(event, wall)
        if isinstance(event, TargetBreached):  # alerts do not wait for the batch
            frames = self.alerts.add(alert(event, wall), self._clock.monotonic())
            self._send_alerts(frames)

    # -- the board ------------------------------------------------------------------------

    async def figures(self) -> BoardFigures:
        """The whole board's figures now (validated by its pydantic model), built in
        steps with the event loop's other work (pops) in between."""
        return await self._figures_of(await self.floor.snapshot())

    async def _figures_of(self, snapshot: AcdSnapshot | None) -> BoardFigures:
        """The board's figures for `snapshot` (one snapshot serves every view)."""
        return await run_in_steps(self.tally.steps(snapshot, self._clock.wall()))

    async def board(self, client: Client | None = None) -> dict[str, Any]:
        """The floor as the ACD sees it: queues, agents, calls (the client's team's)."""
        snap = await self.floor.snapshot()
        if snap is None:
            return {}
        board = {
            "queues": [event_fields(q) for q in snap.queues],
            "agents": [event_fields(a) for a in snap.agents],
            "calls": [event_fields(c) for c in snap.calls],
        }
        if client is None or client.view is None:
            return board
        return narrow_board(board, members(snap, client.view))

    async def sees_agent(self, client: Client, agent_id: str) -> bool:
        """Is `agent_id` on `client`'s board (a team leader's: one of their team)?"""
        if client.view is None:
            return True
        return agent_id in members(await self.floor.snapshot(), client.view)

    def _shown(
        self, view: str | None, figures: BoardFigures, snap: AcdSnapshot | None
    ) -> BoardFigures:
        return figures if view is None else narrow_figures(figures, members(snap, view))

    async def _start_board(self, view: str | None) -> BoardFeed:
        """The board feed of `view`, started from now if nobody of it has a board
        yet (`BoardFeed.whole` then gives a joining supervisor the board as of
        the last change sent)."""
        feed = self._board_feeds.setdefault(view, BoardFeed())
        if feed.board is None:
            snap = await self.floor.snapshot()
            figures = await self._figures_of(snap)
            if feed.board is None:  # nor while the snapshot came
                feed.update(self._shown(view, figures, snap))
        return feed

    async def _push_figures(self) -> None:
        """What changed on the board since the last period, one frame for each view."""
        async for _ in _every(self._figures_every):
            views = {client.view for client in self.clients}
            for view in [v for v in self._board_feeds if v not in views]:
                del self._board_feeds[view]  # nobody of it left: whole again next time
            if not self.clients:
                continue
            texts: dict[str | None, str] = {}
            try:
                snap = await self.floor.snapshot()
                figures = await self._figures_of(snap)
                for view in views:
                    feed = self._board_feeds.setdefault(view, BoardFeed())
                    texts[view] = feed.update(self._shown(view, figures, snap)).model_dump_json()
            except Exception:
                log.exception("board figures failed")
                self._board_feeds.clear()  # whoever connects next starts afresh
                continue
            frames = [(c, texts[c.view]) for c in self.clients if c.view in texts]
            await _fan_out(frames, within=self._figures_every * SPREAD)

    def _send_alerts(self, frames: list[FloorAlerts]) -> None:
        """Send what `AlertBurst` gave, then keep one timer at its next deadline."""
        for frame in frames:
            text = frame.model_dump_json()
            for client in list(self.clients):
                client.send(text)
        when = self.alerts.next_deadline()
        if when is not None and self._alert_timer is None:
            delay = max(0.0, when - self._clock.monotonic())
            self._alert_timer = asyncio.get_running_loop().call_later(delay, self._alert_due)

    def _alert_due(self) -> None:
        self._alert_timer = None
        self._send_alerts(self.alerts.on_timer(self._clock.monotonic()))

    async def _push_feed(self) -> None:
        """The floor's events since the last batch, one frame for all supervisors."""
        async for _ in _every(self._feed_every):
            if not self.clients:
                self._feed.clear()
                continue
            supervisors = list(self.clients)
            wants_calls = any(client.calls for client in supervisors)
            try:
                batch = self._feed.take(self._clock.wall(), calls=wants_calls)
            except Exception:
                log.exception("floor batch failed")
                self._feed.clear()
                continue
            if batch is None:
                continue
            # Serialised once per kind: with calls for those who asked, agents only
            # (and only when an agent changed) for the others; a team's once per team.
            whole = batch.model_dump_json() if wants_calls else None
            agents = batch
            if wants_calls:
                agents = batch.model_copy(update={"calls": [], "other": []})
            agents_only = agents.model_dump_json() if agents.agents else None
            teams: dict[tuple[str, bool], str | None] = {}
            snap: AcdSnapshot | None = None
            if any(client.view is not None for client in supervisors):
                snap = await self.floor.snapshot()
            frames: list[tuple[Client, str]] = []
            for client in supervisors:
                if client.view is None:
                    text = whole if client.calls else agents_only
                else:
                    key = (client.view, client.calls)
                    if key not in teams:
                        narrowed = narrow_batch(batch, members(snap, client.view), client.calls)
                        teams[key] = narrowed.model_dump_json() if narrowed else None
                    text = teams[key]
                if text is not None:
                    frames.append((client, text))
            await _fan_out(frames, within=self._feed_every * SPREAD)

    async def _read_history(self) -> None:
        """Today before this process started, from the records; again every few
        minutes, since a journal replayed late adds to it."""
        assert self._records is not None
        while (day := self.tally.day) < self.tally.started:
            try:
                snap = await self.floor.snapshot()
                agents = [a.agent_id for a in snap.agents] if snap else self._agent_ids()
                async with asyncio.timeout(30):
                    queues, per_agent = await self._records(
                        datetime.fromtimestamp(day, UTC),
                        datetime.fromtimestamp(self.tally.started, UTC),
                        agents,
                    )
            except Exception as exc:
                log.warning(
                    "today's figures not read from the records",
                    error=str(exc) or type(exc).__name__,
                )
                await asyncio.sleep(HISTORY_RETRY)
                continue
            self.tally.baseline(
                day,
                {q.queue: _queue_counts(q) for q in queues},
                {
                    a.agent_id: AgentCounts(a.handled, a.missed, a.pause_seconds, a.idle_seconds)
                    for a in per_agent
                },
            )
            await asyncio.sleep(HISTORY_EVERY)


async def _fan_out(frames: list[tuple[Client, str]], within: float) -> None:
    """Large frames (a batch, the board's change) for supervisors, paced: spread over
    `within` seconds, one supervisor at a time. Fifty writes of a frame back to
    back would hold up every pop that became ready meanwhile for all of them,
    and what they cost beyond the event loop (the kernel's copies, fifty
    browsers parsing at once where they share a machine) lands on the pops of
    that moment too; paced, a pop waits for one write at most."""
    gap = within / len(frames) if frames else 0.0
    for client, text in frames:
        if not client.ws.closed:
            client.send(text)
        await asyncio.sleep(gap)


async def _every(period: float) -> AsyncIterator[None]:
    """Every `period` seconds on the event loop's clock, whatever each turn takes (a
    paced fan-out); after a turn that ends later than the next was due, at once."""
    loop = asyncio.get_running_loop()
    due = loop.time()
    while True:
        due = max(due + period, loop.time())
        await asyncio.sleep(due - loop.time())
        yield


def _queue_counts(q: QueueFigures) -> QueueCounts:
    return QueueCounts(
        q.offered,
        q.answered,
        q.answered_within_target,
        q.abandoned,
        q.short_abandons,
        q.answer_seconds,
        q.closed,
        q.no_agent,
    )
