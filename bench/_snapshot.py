"""Measure one version of the code: the committed HEAD, frozen when a run starts.

Importing this module (the first thing `_common` does, before any `callcenter`
import) copies ``callcenter/`` at HEAD into a temporary directory with
``git archive`` and re-executes the script with that copy first on
PYTHONPATH, so every process of the run (the script, the service it starts,
the memory benchmark's children) runs the same code even while commits land
in the repository. ``--worktree`` measures the working tree instead.

The copy is compiled as the Docker image compiles the service (setup.py:
mypyc for the call path, docs/decisions/0003-mypyc.md), so the figures are
those of what ships; ``--pure`` measures the interpreted code instead.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, check=True, timeout=30
    ).stdout.strip()


def _activate() -> None:
    code = os.environ.get("CC_BENCH_CODE")
    if code:
        if code not in sys.path:
            sys.path.insert(0, code)
        if os.environ.get("CC_BENCH_OWNER") == str(os.getpid()):
            atexit.register(shutil.rmtree, code, ignore_errors=True)
        return
    if {"--child", "-h", "--help"} & set(sys.argv):
        return
    pure = "--pure" in sys.argv
    if "--worktree" in sys.argv and pure:
        return  # the working tree as it is
    target = tempfile.mkdtemp(prefix="cc-bench-code-")
    if "--worktree" in sys.argv:
        commit = ""
        _compile(target)
    else:
        commit = _git("rev-parse", "HEAD")
        files = ["callcenter"]
        if not pure:
            files += ["setup.py", "pyproject.toml", "README.md"]
        archive = subprocess.run(
            ["git", "archive", "--format=tar", commit, *files],
            cwd=REPO, capture_output=True, check=True, timeout=60,
        )  # fmt: skip
        subprocess.run(["tar", "-x", "-C", target], input=archive.stdout, check=True, timeout=60)
        if not pure:
            _compile(target, "--here")
    env = dict(os.environ)
    env.update(
        CC_BENCH_CODE=target,
        CC_BENCH_COMMIT=commit,
        CC_BENCH_COMPILED="" if pure else "1",
        CC_BENCH_OWNER=str(os.getpid()),  # execve keeps the pid: this process cleans up
        PYTHONPATH=os.pathsep.join(p for p in (target, env.get("PYTHONPATH")) if p),
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def _compile(target: str, *flags: str) -> None:
    print("compiling the call path with mypyc (scripts/compile; --pure skips this)", flush=True)
    subprocess.run(["bash", str(REPO / "scripts" / "compile"), *flags, target], check=True)


def describe() -> str:
    """Which code was measured, for the docs."""
    how = (
        "compiled with mypyc as the image ships it"
        if os.environ.get("CC_BENCH_COMPILED")
        else "pure Python (`--pure`)"
    )
    commit = os.environ.get("CC_BENCH_COMMIT")
    if commit:
        return (
            f"commit `{commit[:10]}` (HEAD when the run started; uncommitted changes not "
            f"included), {how}"
        )
    head = _git("rev-parse", "--short=10", "HEAD")
    dirty = _git("status", "--porcelain", "--", "callcenter")
    changes = len(dirty.splitlines())
    extra = f", with uncommitted changes to {changes} files under callcenter/" if changes else ""
    return f"working tree at commit `{head}`{extra}, {how}"


_activate()
