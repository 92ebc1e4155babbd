"""Where the database is: a configured DSN, or an embedded PostgreSQL (pgserver).

With no DSN configured the service starts a real PostgreSQL of its own through
the `pgserver` package, with its data in `<service.data_dir>/postgres`, so
records persist across restarts. pgserver runs the server process; this
module only asks it for a connection URI.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Database", "Pool", "open_database", "reset_connection"]


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
    server = await asyncio.to_thread(pgserver.get_server, directory, cleanup_mode="stop")
    return Database(server.get_uri(), server)


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
