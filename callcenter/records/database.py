"""Where the database is: a configured DSN, or an embedded PostgreSQL (pgserver).

With no DSN configured the service starts a real PostgreSQL of its own through
the `pgserver` package, with its data in `<service.data_dir>/postgres`, so
records persist across restarts. pgserver runs the server process; this
module only asks it for a connection URI, and makes sure that the server it
started or found running is stopped at the service's clean stop, also after
a crash (`_forget_dead_users`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

__all__ = ["Database", "Pool", "open_database", "reset_connection"]

log = structlog.get_logger("callcenter.records")


@dataclass(slots=True)
class Database:
    dsn: str
    embedded: Any | None = None  # the pgserver handle, stopped on close

    async def close(self) -> None:
        if self.embedded is not None:
            server, self.embedded = self.embedded, None
            await asyncio.to_thread(server.cleanup)


async def open_database(dsn: str | None, data_dir: Path) -> Database:
    """The configured server, or start the embedded one (in a thread: it blocks)."""
    if dsn:
        return Database(dsn)
    import pgserver  # imported here: only the embedded default needs it

    # pgserver narrates every start and stop at INFO; only its warnings matter.
    logging.getLogger("pgserver").setLevel(logging.WARNING)

    directory = data_dir / "postgres"
    directory.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(_forget_dead_users, directory)
    server = await asyncio.to_thread(pgserver.get_server, directory, cleanup_mode="stop")
    return Database(server.get_uri(), server)


#: pgserver's list of the processes using a server (its pids), in its data directory.
USERS = ".handle_pids.json"


def _forget_dead_users(directory: Path) -> None:
    """Take the processes that no longer run off pgserver's list of the server's users.

    pgserver stops the server when the last process on that list lets it go,
    and a process leaves the list only through its clean stop (`atexit`). A
    process killed (SIGKILL, out of memory) stays on it for good, so every
    later clean stop saw another user and left the postmaster running: the
    next start took over that server, and the one after, and none stopped it.
    The service is the only user of its data directory, so a pid on the list
    whose process is gone is a crashed run of it. (A pid the system has given
    to another process since counts as a user still: the server is then left
    running once more, as before.)
    """
    from pgserver.postgres_server import PostgresServer

    path = directory / USERS
    with PostgresServer._lock:  # pgserver's own lock around the list
        try:
            pids = json.loads(path.read_text())
        except (OSError, ValueError):
            return  # none yet, or unreadable: pgserver makes it anew
        if not isinstance(pids, list):
            return
        alive = [pid for pid in pids if isinstance(pid, int) and _running(pid)]
        if alive != pids:
            log.warning("embedded database's users that are gone forgotten",
                        gone=[pid for pid in pids if pid not in alive])  # fmt: skip
            with contextlib.suppress(OSError):
                path.write_text(json.dumps(alive))


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # no signal sent: only whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's
        return True
    return True


class Pool:
    """An asyncpg pool made on first use and made again after a failure, so a
    database that was down at start-up is used as soon as it is back."""

    def __init__(self, dsn: str, *, max_size: int = 5, timeout: float = 2.0) -> None:
        self.dsn = dsn
        self.max_size = max_size
        self.timeout = timeout
        self._pool: Any | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> Any:
        import asyncpg

        if self._pool is not None:
            return self._pool
        if not self.dsn:
            raise ConnectionError("no database")
        async with self._lock:
            if self._pool is None:
                async with asyncio.timeout(self.timeout):
                    self._pool = await asyncpg.create_pool(
                        self.dsn, min_size=0, max_size=self.max_size, reset=reset_connection
                    )
        return self._pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()


async def reset_connection(conn: Any) -> None:
    """What a pool does with a connection taken back: leave no transaction open,
    without the query asyncpg sends by default at every release (unlock advisory
    locks, close cursors, unlisten, reset settings). The service's pooled
    connections hold none of those (the migrations' advisory lock is released by
    the migrations themselves), and that query is a round trip and a statement
    for PostgreSQL per use: per screen pop's customer lookup, per records batch."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")
