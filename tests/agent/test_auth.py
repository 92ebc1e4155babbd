"""Desktop logins: configured passwords, database hashes, refusals, throttling."""

from __future__ import annotations

import asyncio

import pytest

from callcenter.agent.auth import LoginRefused, Sessions, hash_password


async def test_configured_password_logs_in() -> None:
    sessions = Sessions()
    for n in range(20):
        sessions.add_user(f"a{n}", f"pw-{n}", "agent")
    token = await sessions.login("a7", "pw-7", "10.0.0.1")
    login = sessions.check(token)
    assert login is not None and (login.user_id, login.role) == ("a7", "agent")


async def test_wrong_password_and_unknown_user_are_refused_alike() -> None:
    sessions = Sessions()
    sessions.add_user("a1", "pw-a1", "agent")
    for user, password in (("a1", "pw-a2"), ("nobody", "pw-a1"), ("a1", "")):
        with pytest.raises(LoginRefused) as refused:
            await sessions.login(user, password, "10.0.0.2")
        assert str(refused.value) == "wrong id or password"


async def test_a_password_reset_in_the_database_wins_over_the_configured_one() -> None:
    sessions = Sessions()
    sessions.add_user("a1", "from-config", "agent")
    sessions.set_hash("a1", await asyncio.to_thread(hash_password, "reset-1"), "agent")
    with pytest.raises(LoginRefused):
        await sessions.login("a1", "from-config", "10.0.0.3")
    assert sessions.check(await sessions.login("a1", "reset-1", "10.0.0.3")) is not None


async def test_the_loop_keeps_running_while_a_login_is_checked() -> None:
    sessions = Sessions()
    sessions.set_hash("a1", await asyncio.to_thread(hash_password, "pw"), "agent")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        await sessions.login("a1", "pw", "10.0.0.4")
    finally:
        task.cancel()
    # argon2 runs in a worker thread: the loop ran other work meanwhile.
    assert ticks > 10


async def test_failures_are_throttled_per_user() -> None:
    sessions = Sessions()
    sessions.add_user("a1", "pw", "agent")
    for n in range(5):
        with pytest.raises(LoginRefused) as refused:
            await sessions.login("a1", "guess", f"10.0.1.{n}")
        assert not refused.value.throttled
    with pytest.raises(LoginRefused) as refused:
        await sessions.login("a1", "pw", "10.0.1.9")
    assert refused.value.throttled
