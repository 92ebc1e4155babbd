"""Small helpers shared by tests (import as ``tests.helpers``)."""

from __future__ import annotations

import socket


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port on 127.0.0.1 that is free right now (for TCP by default, or pass SOCK_DGRAM).

    Another process may take it before the caller binds it; tests that can
    bind port 0 themselves should do that instead.
    """
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
