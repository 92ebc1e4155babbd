"""Fixtures for interop tests against real Kamailio, SIPp and baresip processes.

Missing tools skip the test, unless CALLCENTER_REQUIRE_INTEROP=1 (CI), which
turns the skip into a failure.  Every process started here is killed in
teardown, also when the test fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .baresip import Baresip
from .kamailio import Kamailio
from .sipp import SippRunner
from .tools import require_tool

PBX_DOMAIN = "127.0.0.1"
PBX_USERS = {
    "hotline": "hotline-secret",
    "1001": "agent-1001",
    "1002": "agent-1002",
}

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/interop carries the ``interop`` marker."""
    for item in items:
        if _HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.interop)


@pytest.fixture
def kamailio_binary() -> str:
    return require_tool("kamailio", "kamailio")


@pytest.fixture
def sipp_binary() -> str:
    return require_tool("sipp", "sip-tester")


@pytest.fixture
def baresip_binary() -> str:
    return require_tool("baresip", "baresip")


@pytest.fixture
def make_baresip(tmp_path: Path, baresip_binary: str) -> Iterator[Callable[..., Baresip]]:
    """Factory: ``make_baresip(registrar, "1001", "agent-1001", auto_answer=True)``
    -> a started headless baresip (see baresip.py). All are stopped in teardown;
    their output is printed (shown by pytest when the test failed)."""
    phones: list[Baresip] = []

    def factory(
        registrar: tuple[str, int], extension: str, password: str, **kwargs: Any
    ) -> Baresip:
        phone = Baresip(
            baresip_binary,
            tmp_path / f"baresip-{len(phones) + 1}",
            registrar,
            extension,
            password,
            **kwargs,
        )
        phones.append(phone)
        return phone.start()

    try:
        yield factory
    finally:
        for phone in phones:
            phone.stop()
            print(f"==== baresip {phone.extension} output (tail) ====\n{phone.log_text()[-6000:]}")


@pytest.fixture
def make_kamailio(tmp_path: Path, kamailio_binary: str) -> Iterator[Callable[..., Kamailio]]:
    """Factory: ``make_kamailio(users=..., algorithm="SHA-256", ...)`` -> started Kamailio.

    Defaults to the standard PBX users and domain.  All instances are killed in
    teardown; their logs are printed (shown by pytest when the test failed).
    """
    instances: list[Kamailio] = []

    def factory(**kwargs: Any) -> Kamailio:
        kwargs.setdefault("users", PBX_USERS)
        kwargs.setdefault("domain", PBX_DOMAIN)
        kam = Kamailio(tmp_path / f"kamailio-{len(instances) + 1}", **kwargs)
        instances.append(kam)
        return kam.start()

    try:
        yield factory
    finally:
        errors: list[BaseException] = []
        for kam in instances:
            try:
                kam.close()
            except Exception as exc:  # keep closing the others
                errors.append(exc)
            print(f"==== kamailio {kam.hostport} log (tail) ====\n{kam.log_text()[-6000:]}")
        if errors:
            raise errors[0]


@pytest.fixture
def kamailio(make_kamailio: Callable[..., Kamailio]) -> Kamailio:
    """A started Kamailio registrar/proxy on a free 127.0.0.1 port (UDP+TCP).

    Users: hotline/hotline-secret, 1001/agent-1001, 1002/agent-1002; domain
    127.0.0.1; digest MD5 with qop=auth; only REGISTER is challenged.
    """
    return make_kamailio()


@pytest.fixture
def sipp(tmp_path: Path, sipp_binary: str) -> Iterator[SippRunner]:
    """SIPp helper: ``sipp.run(...)`` / ``await sipp.arun(...)`` / ``sipp.start(...)``."""
    runner = SippRunner(tmp_path / "sipp")
    runner.cwd.mkdir(parents=True, exist_ok=True)
    try:
        yield runner
    finally:
        runner.stop_all()
