"""The call-back worklist's upkeep in the floor process (docs/callbacks.md): the
refresh every `callbacks.refresh_seconds` that makes, closes and expires items
(`records.callbacks.refresh`), the gauges read right after it, the attempts
counted, and the attempt recorded from an outbound call's end.

As the complaints' gauges (`metrics/complaints.py`): a scrape never queries
the database; it serves the last reading, and a refresh that failed (the
database down or slow) is logged, counted and tried again at the next
interval. Before the first reading there are no gauge samples.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from callcenter.acd.events import OutboundEnded
from callcenter.bus import EventBus, Published
from callcenter.casework.callbacks import CallbackRefused, Kind, Outcome, Policy
from callcenter.records import callbacks as store

__all__ = ["CallbackWork", "outcome_of"]

log = structlog.get_logger(__name__)

_FAILED = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def outcome_of(ended: Any) -> Outcome:
    """An outbound call's outcome (`OutboundEnded.outcome`, docs/callbacks.md) as the
    worklist's: `reached`, `no-answer`, `busy`, `declined` as they are; `failed` and
    anything else (the agent's phone not answering: `agent-no-answer`) `failed`."""
    try:
        return Outcome(getattr(ended, "outcome", None))
    except ValueError:
        return Outcome.FAILED


class CallbackWork(Collector):
    """Refreshes the worklist on an interval; a collector of its last reading and of
    the attempts recorded."""

    def __init__(
        self,
        pool: Callable[[], Awaitable[Any]],
        *,
        now: Callable[[], datetime],
        monotonic: Callable[[], float],
        zone: ZoneInfo,
        policy: Policy,
        lead: timedelta,
        interval: float = 60.0,
        timeout: float = 10.0,
        bus: EventBus[Any] | None = None,
    ) -> None:
        self._pool = pool
        # The outbound calls' ends that name an item, taken from the bus as they
        # are published (a tap: the other events cost an isinstance each).
        self._ended: asyncio.Queue[OutboundEnded] = asyncio.Queue()
        self._bus = bus
        self._now = now
        self._monotonic = monotonic
        self.zone = zone
        self.policy = policy
        self.lead = lead
        self.interval = interval
        self.timeout = timeout
        self.last: store.CallbackGauges | None = None
        self.read_at: float | None = None
        self.failures = 0
        self.attempts: dict[tuple[str, str], int] = {
            (k.value, o.value): 0 for k in Kind for o in Outcome
        }
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run(), name="callbacks")]
        if self._bus is not None:
            self._bus.tap(self)
            self._tasks.append(loop.create_task(self._follow(), name="callbacks-outbound"))

    async def stop(self) -> None:
        if self._bus is not None:
            self._bus.untap(self)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def add(self, item: Published[Any]) -> None:
        """The bus's tap: keep an outbound call's end that names an item."""
        event = item.event
        if isinstance(event, OutboundEnded) and event.item_id is not None:
            self._ended.put_nowait(event)

    def flush(self) -> None:
        """The bus's tap: nothing held to make durable."""

    async def _follow(self) -> None:
        """Each outbound call that ended naming an item: its attempt recorded."""
        while True:
            event = await self._ended.get()
            try:
                await self.outbound_ended(event)
            except Exception:  # one bad record must not stop the others
                log.exception("outbound call's attempt failed", item=event.item_id)

    def count(self, kind: str, outcome: str) -> None:
        """An attempt recorded (the API's or an outbound call's)."""
        self.attempts[(kind, outcome)] = self.attempts.get((kind, outcome), 0) + 1

    async def refresh(self) -> None:
        """One refresh and reading; a failure is logged and counted, the last reading kept."""
        try:
            async with asyncio.timeout(self.timeout):
                pool = await self._pool()
                async with pool.acquire() as conn:
                    now = self._now()
                    done = await store.refresh(conn, now, self.zone, self.policy, self.lead)
                    self.last = await store.gauges(conn, now)
            self.read_at = self._monotonic()
            if done.made or done.closed or done.expired:
                log.info("call-backs refreshed", made=done.made, closed=done.closed,
                         expired=done.expired)  # fmt: skip
        except _FAILED as exc:
            self.failures += 1
            log.warning("call-backs not refreshed", error=repr(exc), failures=self.failures)

    async def outbound_ended(self, ended: Any) -> store.StoredItem | None:
        """Record the attempt of an outbound call that ended (`OutboundEnded`: `call_id`,
        `agent_id`, `item_id`, `outcome`), when it names an item; None when it names
        none, or one that is gone or no longer open (logged). The agent may correct
        the outcome afterwards with an attempt of their own through the API."""
        item_id = getattr(ended, "item_id", None)
        if not isinstance(item_id, int):
            return None
        if not getattr(ended, "dialled", True):
            # The agent's phone did not answer, or the call could not be placed: the
            # customer was not called, so the item's attempts are not used up.
            log.info("outbound call's attempt not recorded: the customer was not called",
                     item=item_id, outcome=getattr(ended, "outcome", None))  # fmt: skip
            return None
        outcome = outcome_of(ended)
        agent = str(ended.agent_id)
        try:
            pool = await self._pool()
            async with pool.acquire() as conn:
                # Only an item the agent sees, and its own number: a desktop may name
                # any item beside any number (agent.dial), and must not work it so.
                found = await store.item(conn, item_id)
                mine = await store.in_scope(conn, item_id, store.CallbackScope(agent, None))
                if found is None or not mine or found.number != str(ended.number):
                    log.warning("outbound call's attempt not recorded: not the agent's item"
                                " or not its number", item=item_id, agent=agent)  # fmt: skip
                    return None
                done = await store.record_attempt(
                    conn, item_id, outcome, agent, self._now(), self.policy,
                    call_id=str(ended.call_id), take=True,
                )  # fmt: skip
        except (store.NoSuchItem, CallbackRefused, *_FAILED) as exc:
            log.warning("outbound call's attempt not recorded", item=item_id, error=repr(exc))
            return None
        self.count(done.work.kind.value, outcome.value)
        return done

    async def _run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval)

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily(
            "callcenter_callbacks_refresh_failures",
            "Refreshes of the call-back worklist that failed for the database (retried).",
            value=self.failures,
        )
        tried = CounterMetricFamily(
            "callcenter_callback_attempts",
            "Attempts to call a customer back recorded on the worklist, by kind and outcome.",
            labels=["kind", "outcome"],
        )
        for (kind, outcome), value in sorted(self.attempts.items()):
            tried.add_metric([kind, outcome], value)
        yield tried
        last, read_at = self.last, self.read_at
        if last is None or read_at is None:
            return
        yield GaugeMetricFamily(
            "callcenter_callbacks_read_age_seconds",
            "Seconds since the call-back worklist was refreshed and read.",
            value=max(0.0, self._monotonic() - read_at),
        )
        pending = {kind: float(n) for kind, n in last.pending.items()}
        figures: tuple[tuple[str, str, dict[str, float]], ...] = (
            ("callbacks_pending", "Call-back items open and owed, by kind.", pending),
            ("callbacks_oldest_seconds", "Seconds the oldest open call-back item has been "
             "owed (since the abandon, or the follow-up's due time), by kind; 0 with none.",
             last.oldest),
        )  # fmt: skip
        for name, help_text, values in figures:
            family = GaugeMetricFamily(f"callcenter_{name}", help_text, labels=["kind"])
            for key, figure in sorted(values.items()):
                family.add_metric([key], figure)
            yield family
