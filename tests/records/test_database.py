"""The service's connection pool against a real PostgreSQL: what it does with a
connection taken back; the embedded PostgreSQL stopped by a clean stop, also
after a crash."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import time
from pathlib import Path

import psutil

from callcenter.records.database import Database, Pool, open_database

REPO = Path(__file__).resolve().parents[2]


async def test_a_connection_taken_back_costs_no_statement(database: str) -> None:
    """asyncpg's default reset is one more statement per use (per screen pop's
    customer lookup): the pool's own sends nothing for a connection left clean."""
    pool = Pool(database, max_size=1)
    try:
        asyncpg_pool = await pool.get()
        queries: list[str] = []
        async with asyncpg_pool.acquire() as conn:
            conn.add_query_logger(lambda q: queries.append(q.query))
            assert await conn.fetchval("SELECT 41 + 1") == 42
        async with asyncpg_pool.acquire() as again:
            assert again is not None
        assert queries == ["SELECT 41 + 1"]
    finally:
        await pool.close()


async def test_a_connection_taken_back_inside_a_transaction_is_rolled_back(
    database: str,
) -> None:
    pool = Pool(database, max_size=1)
    try:
        asyncpg_pool = await pool.get()
        async with asyncpg_pool.acquire() as conn:
            await conn.execute("CREATE TABLE kept (n integer)")
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO kept VALUES (1)")
            assert conn.is_in_transaction()
        async with asyncpg_pool.acquire() as conn:
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM kept") == 0
    finally:
        await pool.close()


async def test_a_clean_stop_after_a_crash_stops_the_embedded_postgres(tmp_path: Path) -> None:
    """A process killed with the embedded PostgreSQL open leaves its pid in
    pgserver's list of the server's users: the next run's clean stop took that
    dead process for another user and left the postmaster running for good."""
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", OPEN_AND_WAIT, str(data_dir)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    postmasters: list[psutil.Process] = []
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 30)
        postmasters.append(psutil.Process(int(line)))
        child.kill()  # SIGKILL: no atexit, no clean stop
        child.wait(5)
        assert postmasters[0].is_running()  # the server outlives its starter

        database = await open_database(None, data_dir)  # the restarted service takes it over
        postmasters.append(psutil.Process(database.embedded.get_pid()))
        await database.close()  # and stops cleanly

        _, alive = psutil.wait_procs(postmasters, timeout=10)
        assert alive == []
    finally:
        child.kill()
        child.wait(5)
        for process in postmasters:  # never leave a server behind, whatever failed
            with contextlib.suppress(psutil.Error):
                process.kill()


#: A process that opens the embedded database, says its postmaster's pid and waits.
OPEN_AND_WAIT = """
import asyncio, sys, time
from pathlib import Path
from callcenter.records.database import open_database
database = asyncio.run(open_database(None, Path(sys.argv[1])))
print(database.embedded.get_pid(), flush=True)
time.sleep(60)
"""


async def test_a_stop_during_a_start_of_the_embedded_postgres_stops_what_it_started() -> None:
    """The watch starts a stopped server in a thread, which a stop cannot
    cancel: stopped before that start was done, the server it then started
    outlived the service. (pgserver's server, as the watch and the stop use it.)"""
    import threading

    class Postmaster:
        def __init__(self) -> None:
            self.running = False
            self.process = self  # pgserver's psutil.Process of it

        def is_running(self) -> bool:
            return self.running

        def status(self) -> str:
            return "sleeping"

    class Server:
        def __init__(self) -> None:
            self._postmaster_info = Postmaster()  # stopped: the watch starts it
            self.log = Path("/nonexistent/log")
            self.starting = threading.Event()
            self.started = threading.Event()

        def ensure_postgres_running(self) -> None:
            self.starting.set()
            time.sleep(0.3)  # pg_ctl start -w
            self._postmaster_info.running = True
            self.started.set()

        def cleanup(self) -> None:  # pgserver's: stops the postmaster it knows, if it runs
            self._postmaster_info.running = False

    server = Server()
    database = Database("postgresql:///", server)
    database.watch(interval=0.01)
    await asyncio.to_thread(server.starting.wait, 5)
    await database.close()
    assert await asyncio.to_thread(server.started.wait, 5)  # the start is over
    assert not server._postmaster_info.running  # and what it started is stopped


async def test_a_postmaster_left_a_zombie_of_the_service_is_started_again(tmp_path: Path) -> None:
    """pg_ctl leaves the postmaster to the reaper of orphans: the service itself
    where it is a container's first process. A postmaster that exited was then a
    zombie of the service, "running" for psutil, and never started again. The
    child below is the reaper of its orphans as such a service is (no root needed)."""
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    child = subprocess.Popen(
        [sys.executable, "-c", REAPER_OF_ITS_POSTMASTER, str(data_dir)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        out, _ = await asyncio.to_thread(child.communicate, timeout=60)
    finally:
        child.kill()
        child.wait(5)
    first, zombie, restarts, second, after = out.splitlines()[-1].split()  # after the log
    assert zombie == "zombie"  # what the service saw of the postmaster that exited
    assert restarts == "1" and second != first  # started again
    assert after in ("zombie", "gone")  # and stopped with the service


#: A process that reaps its orphans, opens the embedded database with its watch,
#: stops the postmaster (an immediate shutdown) and reports what happened.
REAPER_OF_ITS_POSTMASTER = """
import asyncio, ctypes, os, signal, sys
from pathlib import Path
import psutil
from callcenter.records.database import open_database
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER

async def main():
    database = await open_database(None, Path(sys.argv[1]))
    database.watch(interval=0.1)
    first = database.embedded.get_pid()
    postmaster = psutil.Process(first)
    os.kill(first, signal.SIGQUIT)
    for _ in range(100):
        await asyncio.sleep(0.05)
        status = postmaster.status() if postmaster.is_running() else "gone"
        if status != "running" and status != "sleeping":
            break
    for _ in range(200):
        if database.restarts:
            break
        await asyncio.sleep(0.05)
    second = database.embedded.get_pid()
    again = psutil.Process(second)
    await database.close()
    after = again.status() if again.is_running() else "gone"
    print(first, status, database.restarts, second, after, flush=True)

asyncio.run(main())
"""
