"""A real PostgreSQL for the records tests: CALLCENTER_TEST_DSN, or an embedded
server (pgserver) started once per session in a temporary directory."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    dsn = os.environ.get("CALLCENTER_TEST_DSN")
    if dsn:
        yield dsn
        return
    import pgserver

    directory: Path = tmp_path_factory.mktemp("postgres")
    server = pgserver.get_server(directory, cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture
async def database(postgres_server: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, query = postgres_server.partition("?")
    dsn = base.rsplit("/", 1)[0] + f"/{name}" + (f"?{query}" if query else "")
    try:
        yield dsn
    finally:
        admin = await asyncpg.connect(postgres_server)
        try:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
def own_postgres(tmp_path: Path) -> Any:
    """A PostgreSQL of this test's own, which it may stop and start."""
    import pgserver

    class Server:
        def __init__(self) -> None:
            self.dir = tmp_path / "pg"
            self.handle = pgserver.get_server(self.dir, cleanup_mode="stop")
            self.dsn = self.handle.get_uri()

        def stop(self) -> None:
            self.handle.cleanup()

        def start(self) -> None:
            self.handle = pgserver.get_server(self.dir, cleanup_mode="stop")
            assert self.handle.get_uri() == self.dsn

    server = Server()
    try:
        yield server
    finally:
        server.handle.cleanup()
