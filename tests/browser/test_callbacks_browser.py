"""The call-back worklist in the complaints page, in a real headless Chromium (Debian's):
an abandoned call appears on the agent's "Call-backs" tab, the agent records a call that
did not reach the customer and one that did, and the item closes with its outcome."""

from __future__ import annotations

import re
from typing import Any

from callcenter.call_side.service import Service
from tests.browser.test_complaints_browser import WINDOW, _act, _log_in
from tests.browser.test_desktop_browser import ARTIFACTS, headless
from tests.helpers import connected


async def test_an_abandoned_caller_called_back_from_the_worklist(service: Service) -> None:
    base = f"http://{service.http_addresses[0]}"
    assert service.dsn
    async with connected(service.dsn) as conn:
        await conn.execute(
            # Ended: an open row would be closed as interrupted by the run's first record.
            "INSERT INTO calls (call_id, queue, caller, caller_e164, arrived_at, ended_at,"
            " outcome) VALUES ('gave-up', 'hotline', '13812345678', '+8613812345678',"
            " now() - interval '10 minutes', now() - interval '10 minutes', 'abandoned'),"
            " ('too-short', 'hotline', '13900000000', '+8613900000000',"
            " now() - interval '9 minutes', now() - interval '9 minutes', 'short-abandon')"
        )
    async with headless() as browser:
        page = await browser.new_page(locale="en-US", viewport=WINDOW)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{base}/complaints")
        await _log_in(page, "a001", "agent-pw")
        await page.click("#tab-callbacks")  # refreshed every 0.5 s (tests/browser/conftest.py)
        row = page.locator("#case-rows tr")
        await page.wait_for_selector("#case-rows tr", timeout=10_000)
        # The supervisor board counts the callers owed a call (the open items): the
        # item exists now (the agent's list shows it).
        sup = await browser.new_page(locale="en-US", viewport=WINDOW)
        sup.on("pageerror", lambda error: errors.append(str(error)))
        await sup.goto(f"{base}/supervisor")
        await _log_in(sup, "sup", "sup-pw")
        await sup.wait_for_selector("#cb-count:text-is('1')", timeout=10_000)
        assert "The longest owed for 1" in await sup.inner_text("#cb-oldest")  # 10 min
        await sup.close()
        assert await row.count() == 1  # not the short abandon
        cells = await row.locator("td").all_inner_texts()
        assert cells[2:] == ["Abandoned call", "+8613812345678", "–", "0/3"], cells
        assert cells[1].endswith("· Due now"), cells
        await row.locator("button.open").click()
        await page.wait_for_selector("#case-title:has-text('Call-back')")
        assert await page.is_hidden("#case-actions [data-assign]")  # an agent's page
        # Calling from the agent's own phone: the ACD says why not, in words (the
        # agent has no desktop open, so is logged out).
        assert await page.is_visible("#cb-call")
        await page.click("#cb-call")
        await page.wait_for_selector("#case-action-status.error:has-text('cannot dial out')")
        await _act(page, "Record a call", {}, select={"outcome": "no-answer"},
                   within="#case-actions")  # fmt: skip
        await page.wait_for_selector("#case-action-status:has-text('Record a call')")
        facts = await page.inner_text("#case-facts")
        assert "a001" in facts and "Next attempt" in facts, facts
        assert not re.search(r"\d{4}-\d\d-\d\dT", facts), facts  # times in words
        await _act(page, "Record a call", {"notes": "will come on Monday"},
                   select={"outcome": "reached"}, within="#case-actions")  # fmt: skip
        await page.wait_for_selector("#case-title:has-text('Closed')")
        assert await page.is_hidden("#case-actions")
        facts = await page.inner_text("#case-facts")
        assert "Reached" in facts, facts
        history = await page.locator("#case-history tr").all_inner_texts()
        assert len(history) == 2 and "Reached" in history[1], history
        await page.screenshot(path=str(ARTIFACTS / "callbacks-closed-1366x768-en.png"))
        await page.wait_for_selector("#case-rows tr", state="detached", timeout=5_000)
        assert errors == []
    async with connected(service.dsn) as conn:
        row_: Any = await conn.fetchrow(
            "SELECT status, closed_as, attempts, assigned_to FROM callback_items"
        )
    assert tuple(row_) == ("closed", "reached", 2, "a001")
