"""Ending background tasks.

Two asyncio patterns lose a cancellation on Python 3.11, and a service that
loses one cannot stop: ``asyncio.wait_for`` returns a result that arrives
together with the cancel (the task goes on, e.g. into a five-minute sleep;
banned in the package, use ``asyncio.timeout``), and ``with
suppress(CancelledError): await task`` swallows the *caller's* cancellation
along with the task's. `cancel_and_wait` is the one way to end tasks here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

__all__ = ["cancel_and_wait"]


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
