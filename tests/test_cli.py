from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from callcenter import __version__
from callcenter.cli import main
from tests.helpers import FLOOR_PROCESS, free_port

ROOT = Path(__file__).resolve().parent.parent


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without CALLCENTER_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("CALLCENTER_")}
    return {**env, **extra}


@pytest.fixture
def no_callcenter_env(monkeypatch):
    for key in list(os.environ):
        if key.upper().startswith("CALLCENTER_"):
            monkeypatch.delenv(key)


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"callcenter {__version__}"


def test_help_lists_the_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "run" in out and "check-config" in out and "CALLCENTER_HTTP__PORT" in out


def test_usage_error_is_status_2(capsys):
    assert main([]) == 2
    assert main(["frobnicate"]) == 2


def test_check_config_prints_effective_settings_with_secrets_masked(
    tmp_path, capsys, monkeypatch, no_callcenter_env
):
    config = tmp_path / "c.toml"
    config.write_text(
        '[[accounts]]\nname = "hotline"\nserver = "pbx"\nuser = "4000"\npassword = "hunter2"\n'
    )
    monkeypatch.setenv("CALLCENTER_HTTP__PORT", "9000")
    assert main(["check-config", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    effective = json.loads(out)
    assert effective["http"]["port"] == 9000
    assert effective["accounts"][0]["auth_user"] == "4000"
    assert effective["accounts"][0]["password"] == "**********"
    assert "hunter2" not in out


def test_check_config_uses_callcenter_config(tmp_path, capsys, monkeypatch, no_callcenter_env):
    config = tmp_path / "c.toml"
    config.write_text("[http]\nport = 9003\n")
    monkeypatch.setenv("CALLCENTER_CONFIG", str(config))
    assert main(["check-config"]) == 0
    assert json.loads(capsys.readouterr().out)["http"]["port"] == 9003


def test_invalid_config_names_the_key_and_exits_2(tmp_path, capsys, no_callcenter_env):
    config = tmp_path / "bad.toml"
    config.write_text("[sip]\nport = 70000\n")
    assert main(["check-config", "--config", str(config)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "sip.port" in captured.err
    assert "65535" in captured.err


def test_missing_config_file_exits_2(tmp_path, capsys, no_callcenter_env):
    assert main(["run", "--config", str(tmp_path / "absent.toml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_run_with_invalid_config_exits_2_without_traceback(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('[log]\nlevel = "loud"\n')
    result = subprocess.run(
        [sys.executable, "-m", "callcenter", "run", "--config", str(config)],
        env=clean_env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "log.level" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_serves_healthz_and_stops_on_sigterm(tmp_path):
    port = free_port()
    env = clean_env(
        CALLCENTER_HTTP__PORT=str(port),
        # Keep clear of a real PBX on this machine once SIP listens.
        CALLCENTER_SIP__PORT=str(free_port()),
        CALLCENTER_SIP__TLS_PORT=str(free_port()),
        CALLCENTER_SERVICE__DATA_DIR=str(tmp_path / "var"),
        CALLCENTER_SERVICE__FLOOR_PROCESS=str(FLOOR_PROCESS).lower(),
        CALLCENTER_LOG__LEVEL="debug",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "callcenter", "run"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        body = wait_for_health(f"http://127.0.0.1:{port}/healthz", process, deadline=20.0)
        assert body["status"] == "ok"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        out, err = process.communicate()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    lines = [json.loads(line) for line in out.splitlines()]
    events = [line["event"] for line in lines]
    # The default event loop is uvloop (a dependency); the calls tests run on asyncio's.
    # Each process says which it runs (the floor process's lines say process=floor).
    loops = {line.get("process", "call"): line for line in lines if line["event"] == "event loop"}
    assert loops.keys() == ({"call", "floor"} if FLOOR_PROCESS else {"call"})
    assert {line["implementation"] for line in loops.values()} == {"uvloop"}
    assert events.index("sip listening") < events.index("service started")
    assert events[-1] == "service stopped"
    assert "Traceback" not in err


def wait_for_health(
    url: str, process: subprocess.Popen, deadline: float, status: str | None = None
) -> dict:
    """The first 200 from /healthz (with `status`, the first that says it)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            _, err = process.communicate()
            pytest.fail(f"service exited with {process.returncode}: {err}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    body = json.load(response)
                    if status is None or body["status"] == status:
                        return body
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    pytest.fail(f"{url} did not answer 200 {status or ''} within {deadline} s")


def test_demo_runs_calls_and_stops_on_sigterm(tmp_path):
    """The README's run command: the demo answers /healthz and places real calls."""
    port = free_port()
    env = clean_env(
        CALLCENTER_HTTP__PORT=str(port),
        CALLCENTER_SIP__PORT=str(free_port()),
        CALLCENTER_SIP__TLS_PORT=str(free_port()),
        CALLCENTER_LOG__FORMAT="json",
        CALLCENTER_SERVICE__DATA_DIR=str(tmp_path / "var"),
        CALLCENTER_SERVICE__FLOOR_PROCESS=str(FLOOR_PROCESS).lower(),
        CALLCENTER_QUEUES='[{"name": "hotline", "cadence": [0.1, 0.4], "wrap_up": 0.2}]',
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "callcenter", "demo", "--agents", "2", "--rate", "5", "--seed", "3"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # Up, then "ok" once the simulated phones have registered ("no-phones" until then).
        wait_for_health(f"http://127.0.0.1:{port}/healthz", process, deadline=20.0)
        body = wait_for_health(
            f"http://127.0.0.1:{port}/healthz", process, deadline=10.0, status="ok"
        )
        assert body["phones"]["registered"] == 2
        time.sleep(3.0)  # let some calls happen
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        out, err = process.communicate()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert "callcenter demo: 2 simulated agents" in out
    assert f"agent desktop:    http://127.0.0.1:{port}/agent" in out
    events = [json.loads(line)["event"] for line in out.splitlines() if line.startswith("{")]
    assert events.count("phone registered") == 2
    assert "call answered" in events
    assert events[-1] == "service stopped"
    assert "Traceback" not in err
