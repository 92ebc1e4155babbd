"""Ending background tasks; long work in steps.

Two asyncio patterns lose a cancellation on Python 3.11, and a service that
loses one cannot stop: ``asyncio.wait_for`` returns a result that arrives
together with the cancel (the task goes on, e.g. into a five-minute sleep;
banned in the package, use ``asyncio.timeout``), and ``with
suppress(CancelledError): await task`` swallows the *caller's* cancellation
along with the task's. `cancel_and_wait` is the one way to end tasks here.

Work that would hold the event loop for long (the supervisor board's thousand
rows) is written as a generator that yields between steps and returns its
result: `run_steps` runs it at once, `run_in_steps` lets the loop's other work
(a screen pop) run between the steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator, Iterable
from typing import Any, TypeVar, cast

__all__ = ["cancel_and_wait", "run_in_steps", "run_steps"]

T = TypeVar("T")


def run_steps(steps: Generator[None, None, T]) -> T:
    """The work's result, its steps run one after the other."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return cast(T, done.value)


async def run_in_steps(steps: Generator[None, None, T]) -> T:
    """The work's result, the event loop's other work run between its steps."""
    try:
        while True:
            next(steps)
            await asyncio.sleep(0)
    except StopIteration as done:
        return cast(T, done.value)


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel `tasks` and wait until all have ended.

    A task that had already failed re-raises its error here (once all have
    ended), as awaiting it would; if the caller itself is cancelled while
    waiting, that cancellation propagates rather than being taken for one of
    the tasks'.
    """
    pending = list(tasks)
    for task in pending:
        task.cancel()
    if not pending:
        return
    results = await asyncio.gather(*pending, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            raise result
