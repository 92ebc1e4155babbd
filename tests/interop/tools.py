"""Small helpers shared by the interop harness: locating tools, free ports."""

from __future__ import annotations

import os
import shutil
import socket

import pytest

# Debian installs kamailio/kamcmd in /usr/sbin, which is not on every PATH.
_EXTRA_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")

REQUIRE_ENV = "CALLCENTER_REQUIRE_INTEROP"


def find_tool(name: str) -> str | None:
    """Absolute path of executable ``name`` (PATH, then the sbin directories)."""
    found = shutil.which(name)
    if found:
        return found
    path = os.pathsep.join(_EXTRA_DIRS)
    return shutil.which(name, path=path)


def interop_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip() not in ("", "0", "false", "no")


def require_tool(name: str, package: str) -> str:
    """Return the tool's path; skip the test if missing (fail when interop is required)."""
    path = find_tool(name)
    if path is not None:
        return path
    message = f"{name} not installed (Debian package {package}); run scripts/install-interop-tools"
    if interop_required():
        pytest.fail(f"{message} [{REQUIRE_ENV}=1]", pytrace=False)
    pytest.skip(message)


def free_port(host: str = "127.0.0.1", *, attempts: int = 50) -> int:
    """A port that is currently free for both UDP and TCP on ``host``."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port: int = udp.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                    tcp.bind((host, port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free UDP+TCP port found")


def free_udp_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports currently free for UDP and TCP on ``host``."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port(host)
        if port not in ports:
            ports.append(port)
    return ports
