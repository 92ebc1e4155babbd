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

__all__ = ["Database", "open_database"]


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
