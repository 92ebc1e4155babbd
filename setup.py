"""Build hook: with CALLCENTER_COMPILE=1 the call path is compiled with mypyc.

The project's metadata is in pyproject.toml; this file only adds the
extension modules. Without the variable (editable installs, the test
environment) the package is pure Python. With it (the Docker image,
`scripts/compile` for the benchmarks and the compiled test pass) the modules
below become C extensions built from the same typed source, by mypy's own
compiler, as black and mypy ship themselves; see docs/decisions/0003-mypyc.md.
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import setup

#: The packages on the call path: every message and every call goes through
#: them, and the runtime that feeds them from the sockets. Everything else (web,
#: records, metrics, desktop) stays interpreted.
COMPILED = (
    "callcenter/sip",
    "callcenter/calls",
    "callcenter/acd",
    "callcenter/call_side/runtime.py",
    "callcenter/throttle.py",
)


def _ext_modules() -> list[object]:
    if os.environ.get("CALLCENTER_COMPILE") != "1":
        return []
    from mypyc.build import mypycify

    here = Path(__file__).resolve().parent
    found = [
        p
        for c in COMPILED
        for p in ((here / c).glob("*.py") if (here / c).is_dir() else [here / c])
    ]
    paths = sorted(str(p.relative_to(here)) for p in found)
    return list(mypycify(paths, opt_level="3"))


setup(ext_modules=_ext_modules())
