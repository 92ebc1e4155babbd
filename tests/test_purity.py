"""The pure cores import no I/O, no clock and no logging (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "callcenter"
# Modules allowed to touch the outside world: the adapters.
ADAPTERS = {"sip/aio.py", "sim/driver.py"}
PURE_PACKAGES = ("sip", "acd", "calls", "sim", "casework")
# The pure modules beside the cores that both processes import.
PURE_MODULES = ("events.py", "throttle.py", "roles.py", "reports/period.py", "reports/model.py",
                "reports/labels.py", "reports/tables.py", "reports/csv.py")
BANNED = {
    "asyncio",
    "aiohttp",
    "asyncpg",
    "prometheus_client",
    "structlog",
    "time",
    "logging",
    "socket",
}


def pure_modules() -> list[Path]:
    files = [p for pkg in PURE_PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))]
    files += [ROOT / name for name in PURE_MODULES]
    return [p for p in files if p.relative_to(ROOT).as_posix() not in ADAPTERS]


@pytest.mark.parametrize("path", pure_modules(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_pure_module_imports_nothing_impure(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & BANNED, f"{path.name} imports {sorted(imported & BANNED)}"
    # Nor the adapters of its own package.
    assert not any(
        isinstance(n, ast.ImportFrom) and n.module in ("aio", "callcenter.sip.aio")
        for n in ast.walk(tree)
    )
