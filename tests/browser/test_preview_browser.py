"""A call-back offered to a free agent (preview), in a real headless Chromium (Debian's):
the agent goes ready, sees the abandoned caller on the "Call back" card, skips it, logs
in again (a new session: the skip forgotten), and calls: the call is placed naming the item (the service here
has no route for outbound calls, so it fails at once, said in words; the customer was not
called, so no attempt is used up on the item)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from callcenter.call_side.service import Service
from tests.browser.test_desktop_browser import ARTIFACTS, headless
from tests.helpers import connected

HAN = "+8613812345678"  # Han Meimei, a customer (the fixture imports her)


@pytest.fixture
def hotline() -> dict[str, Any]:
    return {"preview_callbacks": True}


async def test_a_ready_agent_is_offered_an_abandoned_caller_and_calls_them(
    service: Service,
) -> None:
    base = f"http://{service.http_addresses[0]}"
    assert service.dsn
    async with connected(service.dsn) as conn:
        await conn.execute(
            "INSERT INTO calls (call_id, queue, caller, caller_e164, arrived_at, outcome)"
            " VALUES ('gave-up', 'hotline', '13812345678', $1, now() - interval '10 minutes',"
            " 'abandoned')",
            HAN,
        )
        async with asyncio.timeout(10):  # the worklist's refresh, every 0.5 s here
            while not await conn.fetchval("SELECT count(*) FROM callback_items"):
                await asyncio.sleep(0.1)
    async with headless() as browser:
        page = await browser.new_page(locale="en-US")
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{base}/agent")
        await page.fill("#user_id", "a001")
        await page.fill("#password", "agent-pw")
        await page.click("#login button[type=submit]")
        await page.wait_for_selector("#state:has-text('Not ready')")
        assert await page.is_hidden("#preview-box")  # not ready: nothing offered
        await page.click("#ready")
        await page.wait_for_selector("#preview-box:not([hidden])", timeout=5_000)
        card = await page.inner_text("#preview-box")
        assert "Call back" in card and "Abandoned call" in card and HAN in card, card
        assert "0/3" in card, card
        await page.screenshot(path=str(ARTIFACTS / "preview-card-en.png"))
        # Skipped: the only item due, so nothing more is offered.
        await page.click("#preview-skip")
        await page.wait_for_selector("#preview-box", state="hidden", timeout=5_000)
        # A skip holds for the session; a new login (the page reloaded) starts afresh,
        # still ready: the page asks and is offered the item again.
        await page.reload()
        await page.fill("#user_id", "a001")
        await page.fill("#password", "agent-pw")
        await page.click("#login button[type=submit]")
        await page.wait_for_selector("#preview-box:not([hidden])", timeout=5_000)
        await page.click("#preview-call")
        await page.wait_for_selector(
            f"#dial-status:has-text('{HAN} Han Meimei: the call could not be placed')",
            timeout=5_000,
        )
        assert errors == []
    # The call never reached the customer (no route): no attempt is used up on the
    # item, which stays open for the next try.
    await asyncio.sleep(1.0)
    async with connected(service.dsn) as conn:
        row = await conn.fetchrow("SELECT attempts, status FROM callback_items")
    assert row is not None and tuple(row) == (0, "open")
