"""Where the database is: a configured DSN, or an embedded PostgreSQL (pgserver).

With no DSN configured the service starts a real PostgreSQL of its own through
the `pgserver` package, with its data in `<service.data_dir>/postgres`, so
records persist across restarts. pgserver runs the server process; this
module only asks it for a connection URI, and makes sure that the server it
started or found running is stopped at the service's clean stop, also after
a crash (`_forget_dead_users`).

Nothing else starts that server again once it has stopped, so `Database.watch`
does. PostgreSQL restarts its own processes after a crash of one of them
(a PANIC: the WAL could not be written to a full disk), but when its recovery
fails in turn (the end-of-recovery checkpoint needs a new WAL file on that
full disk) the postmaster exits for good: the records then wait in the
journal until the service's next start. The watch notices the postmaster
gone, logs it with the end of PostgreSQL's log, starts it again, retrying
with back-off while it cannot start, and counts both (docs/records.md, "A
full disk").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from callcenter.log import LogBudget
from callcenter.tasks import cancel_and_wait

__all__ = ["Database", "Pool", "open_database", "postgres_log", "reset_connection"]

log = structlog.get_logger("callcenter.records")


@dataclass(slots=True)
class Database:
    dsn: str
    embedded: Any | None = None  # the pgserver handle, stopped on close
    #: The embedded server found stopped and started again by `watch`.
    restarts: int = 0
    #: Attempts to start it again that failed (each retried).
    restart_failures: int = 0
    #: True from the moment the watch finds the embedded server stopped until it runs again.
    down: bool = False
    _watch: asyncio.Task[None] | None = None
    _starting: asyncio.Future[None] | None = None  # a start in its thread, not cancellable

    def watch(self, *, interval: float = 2.0, retry_max: float = 30.0) -> None:
        """Check every `interval` seconds that the embedded server runs, and
        start it again when it does not (see the module); a start that fails is
        retried after twice the wait before it, up to `retry_max` seconds."""
        if self.embedded is not None and self._watch is None:
            self._watch = asyncio.create_task(
                self._keep_running(self.embedded, interval, retry_max), name="embedded-database"
            )

    async def close(self, start_wait: float = 5.0) -> None:
        """Stop watching and stop the embedded server. A start in progress is
        waited for (up to `start_wait` seconds): stopped before it is done, the
        server it starts would outlive the service."""
        if self._watch is not None:
            await cancel_and_wait([self._watch])
            self._watch = None
        starting, self._starting = self._starting, None
        if starting is not None and not starting.done():
            with contextlib.suppress(Exception):  # a start that fails starts nothing
                async with asyncio.timeout(start_wait):
                    await asyncio.shield(starting)
        if self.embedded is not None:
            server, self.embedded = self.embedded, None
            await asyncio.to_thread(server.cleanup)

    async def _keep_running(self, server: Any, interval: float, retry_max: float) -> None:
        failures_logged = LogBudget(5, 300.0)
        loop = asyncio.get_running_loop()
        wait = interval
        while True:
            await asyncio.sleep(wait)
            if _postmaster_running(server):
                wait = interval
                continue
            if not self.down:
                self.down = True
                pg_log = await asyncio.to_thread(postgres_log, server.log)
                log.error("embedded database stopped; starting it again", postgres_log=pg_log)
            try:
                self._starting = asyncio.ensure_future(asyncio.to_thread(_start, server))
                await asyncio.shield(self._starting)
            except Exception as exc:  # pg_ctl's failure, a time-out: PostgreSQL's log says why
                self.restart_failures += 1
                wait = min(max(2 * wait, interval), retry_max)
                if failures_logged.take(loop.time()):
                    log.error("embedded database did not start; retrying",
                              error=_why(exc), retry_in=wait,
                              failures=self.restart_failures,
                              postgres_log=await asyncio.to_thread(postgres_log, server.log),
                              **failures_logged.written())  # fmt: skip
                continue
            self.restarts += 1
            self.down = False
            wait = interval
            log.warning("embedded database started again", restarts=self.restarts)


def _postmaster_running(server: Any) -> bool:
    """Whether the postmaster pgserver started (or found) still runs. A
    postmaster restarting its processes after a crash runs: that is
    PostgreSQL's own recovery, left alone.

    pg_ctl leaves the postmaster to the system's reaper of orphans, which is
    the service itself where it runs as a container's first process (the
    image's entry point): a postmaster that exits stays a zombie of the
    service, and a zombie "is running" for psutil. It is reaped here and
    counted as stopped."""
    info = server._postmaster_info  # pgserver's record of it, renewed by each start
    if info is None or not info.is_running():
        return False
    try:
        if info.process.status() != "zombie":  # a psutil.Process: psutil.STATUS_ZOMBIE
            return True
    except Exception:  # psutil.NoSuchProcess: gone meanwhile
        return False
    with contextlib.suppress(OSError):  # ChildProcessError: another process's to reap
        os.waitpid(info.pid, os.WNOHANG)
    return False


def _why(exc: Exception) -> str:
    """A failed start in a few words (pg_ctl's whole command line says nothing more)."""
    if isinstance(exc, subprocess.CalledProcessError):
        return f"pg_ctl start exited with status {exc.returncode}"
    return f"{type(exc).__name__}: {exc}"


def _start(server: Any) -> None:
    """Start the stopped server as pgserver does at its first use (same
    directory, same socket: the DSN the service handed out stays valid)."""
    from pgserver.postgres_server import PostgresServer

    with PostgresServer._lock:
        server.ensure_postgres_running()


def postgres_log(path: Path, lines: int = 6, width: int = 300) -> list[str]:
    """The last lines of the embedded PostgreSQL's log (`path`: pgserver's, in
    its data directory), each cut to `width` characters (a failed statement's
    text can be long): why it stopped or did not start."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16 * 1024))
            text = f.read().decode("utf-8", "replace")
    except OSError as exc:
        return [f"log not read: {exc}"]
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return [line[:width] for line in tail]


class _NoLogDump(logging.Filter):
    """pgserver logs the whole of PostgreSQL's log when a start fails (megabytes
    after a full disk's failed statements) and, as an error, every pg_ctl that
    fails, the server's stop included when it has stopped already. The service
    logs the end of PostgreSQL's log with its own line instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(
            ("Failed to start server", "Timeout starting server", "Failed postgres command")
        )


async def open_database(dsn: str | None, data_dir: Path) -> Database:
    """The configured server, or start the embedded one (in a thread: it blocks)."""
    if dsn:
        return Database(dsn)
    import pgserver  # imported here: only the embedded default needs it

    # pgserver narrates every start and stop at INFO; only its warnings matter.
    pgserver_log = logging.getLogger("pgserver")
    pgserver_log.setLevel(logging.WARNING)
    if not any(isinstance(f, _NoLogDump) for f in pgserver_log.filters):
        pgserver_log.addFilter(_NoLogDump())

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
