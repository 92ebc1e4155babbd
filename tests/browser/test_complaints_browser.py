"""A complaint from the call to the call-back that closes it, through the pages, in a real
headless Chromium (Debian's): the agent records it on the call, a supervisor works it in
the complaints page, and the customer's next pop no longer lists it."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from callcenter.call_side.service import Service
from tests.browser.test_desktop_browser import (
    ARTIFACTS,
    CHROMIUM_ARGS,
    HAN,
    caller,
    chromium,
    fits,
    log_in,
    saved,
)
from tests.helpers import connected

WINDOW = {"width": 1366, "height": 768}


async def test_complaint_worked_to_its_close_in_the_pages(service: Service) -> None:
    from playwright.async_api import async_playwright

    executable = chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    base = f"http://{service.http_addresses[0]}"
    assert service.dsn
    # An older complaint of Han Meimei's, invalid, logged through the intake API and left
    # untouched for 25 h (its times moved back): overdue.
    async with connected(service.dsn) as conn:
        han = await conn.fetchval("SELECT id FROM customers WHERE name = 'Han Meimei'")
    async with aiohttp.ClientSession(base) as http:
        async with http.post("/api/login", json={"user_id": "sup", "password": "sup-pw"}) as r:
            token = (await r.json())["token"]
        async with http.post(
            "/api/complaints", headers={"Authorization": f"Bearer {token}"},
            json={"matter": "the parcel room was shut at noon", "customer_id": han,
                  "complaint_class": "invalid"},
        ) as r:  # fmt: skip
            assert r.status == 201, await r.text()
            old = (await r.json())["id"]
        async with http.post(
            "/api/suggestions", headers={"Authorization": f"Bearer {token}"},
            json={"text": "open the parcel room at lunchtime", "customer_id": han},
        ) as r:  # fmt: skip
            assert r.status == 201, await r.text()
            suggestion = (await r.json())["id"]
    async with connected(service.dsn) as conn:
        await conn.execute(
            "UPDATE complaints SET received_at = received_at - interval '25 hours',"
            " deadline_at = deadline_at - interval '25 hours' WHERE id = $1",
            old,
        )
    drivers: list[Any] = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page(locale="en-US", viewport=WINDOW)
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await log_in(page, base)
            await page.click("#ready")
            await page.wait_for_selector("#state[data-state=ready]")

            # Call 1: the pop lists the open complaint, its status and that it is overdue.
            phone = caller(service, HAN, [_phone()], talk=6.0)
            drivers.append(phone)
            await phone.start()
            await page.wait_for_selector("#customer-name:has-text('Han Meimei')", timeout=10_000)
            shown = await page.locator("#complaints li").all_inner_texts()
            assert len(shown) == 1 and shown[0].startswith(
                "Invalid · Received · Overdue: the parcel room was shut at noon (→ "
            ), shown
            assert await page.get_attribute("#complaints li", "class") == "overdue"
            await page.screenshot(path=str(ARTIFACTS / "agent-pop-complaints-1366x768-en.png"))
            # The agent records a new complaint, valid.
            await page.select_option("select[name=category]", "complaint")
            await page.select_option("#complaint-class", "valid")
            await page.fill("textarea[name=complaint_matter]", "the cleaner was rude in lobby B")
            await page.fill("input[name=promise_due_at]", "2030-01-02T10:00")
            await page.fill("input[name=promise_text]", "the cleaning company's answer")
            await page.check("input[name=read_back_done]")
            await page.click("#call-form button[type=submit]")
            await saved(page)
            async with connected(service.dsn) as conn:
                new = await conn.fetchval(
                    "SELECT id FROM complaints WHERE matter = 'the cleaner was rude in lobby B'"
                )
            assert new is not None

            # The supervisor board: the overdue complaint counted and listed, linked to the worklist.
            sup = await browser.new_page(locale="en-US", viewport=WINDOW)
            sup.on("pageerror", lambda error: errors.append(str(error)))
            await sup.goto(f"{base}/supervisor")
            await _log_in(sup, "sup", "sup-pw")
            await sup.wait_for_selector("#overdue-count:text-is('1')", timeout=10_000)
            assert f"#{old} Invalid · Received" in await sup.inner_text("#overdue-list")
            await sup.screenshot(path=str(ARTIFACTS / "supervisor-overdue-1366x768-en.png"))
            await sup.click("#overdue-link")
            await sup.wait_for_url("**/complaints#overdue=true&open=true")

            # The worklist, filtered by overdue: only the old complaint.
            await _log_in(sup, "sup", "sup-pw")
            await sup.wait_for_selector(f"#rows tr[data-id='{old}']")
            assert await sup.is_checked("input[name=overdue]")
            assert await sup.locator("#rows tr").count() == 1
            # All open complaints: the new one, valid, and due in 3 days.
            await sup.uncheck("input[name=overdue]")
            await sup.click("#filters button[type=submit]")
            await sup.wait_for_selector(f"#rows tr[data-id='{new}']")
            assert await sup.locator("#rows tr").count() == 2
            await sup.click(f"#rows tr[data-id='{new}'] button.open")
            await sup.wait_for_selector("#detail-title:has-text('Received')")

            # Closing now is refused, in words.
            await _act(sup, "Close", {})
            await sup.wait_for_selector(
                "#action-status:text-is(\"Refused: a received complaint cannot take 'close'\")"
            )
            await _act(sup, "Assign", {"owner": "sup"})
            await _done(sup, "Recorded: Assign")
            await _act(sup, "Investigation", {"findings": "confirmed by the lobby camera"},
                       check="on_site")  # fmt: skip
            await _done(sup, "Recorded: Investigation")
            assert "Investigated" in await sup.inner_text("#detail-title")
            await _act(sup, "Corrective action", {"action": "retrain the cleaning team",
                                                  "owner": "a001",
                                                  "due_at": "2030-01-05T17:00"})  # fmt: skip
            await _done(sup, "Recorded: Corrective action")
            # A valid complaint does not close before its corrective action is checked.
            await _act(sup, "Call-back", {"words": "thank you, much better now"},
                       select={"reached": "true", "satisfied": "true"})  # fmt: skip
            await _done(sup, "Recorded: Call-back")
            await _act(sup, "Close", {})
            await sup.wait_for_selector(
                "#action-status:text-is('Refused: the corrective action has not been checked')"
            )
            await fits(sup, "#filters", "#rows", "#detail-title", "#facts")
            await sup.screenshot(path=str(ARTIFACTS / "complaints-1366x768-en.png"))
            await sup.click("#lang")  # the refusal, and the page, in Chinese
            await _act(sup, "结案", {})
            await sup.wait_for_selector("#action-status:text-is('不能执行: 整改措施尚未验证')")
            await _act(sup, "整改验证", {}, select={"effective": "true"})
            await _done(sup, "已记录：整改验证")
            await fits(sup, "#filters", "#rows", "#detail-title", "#facts")
            await sup.screenshot(path=str(ARTIFACTS / "complaints-1366x768-zh.png"))
            await sup.click("#lang")
            await _act(sup, "Close", {"notes": "customer satisfied"})
            await _done(sup, "Recorded: Close")
            assert "Closed" in await sup.inner_text("#detail-title")
            assert await sup.is_hidden("#actions")
            history = await sup.locator("#history tr td:nth-child(3)").all_inner_texts()
            assert history == ["Received", "Assigned", "Investigated", "Corrective action",
                               "Called back (reached)", "Checked", "Closed"], history  # fmt: skip

            # The old, invalid one: answered by a call-back, no investigation, and closed,
            # from the keyboard (Tab to its row's button, Enter).
            await sup.focus(f"#rows tr[data-id='{old}'] button.open")
            await sup.keyboard.press("Enter")
            await sup.wait_for_selector(f"#detail-title:has-text('#{old}')")
            await _act(sup, "Call-back", {"words": "understood"}, select={"reached": "true"})
            await _done(sup, "Recorded: Call-back")
            await _act(sup, "Close", {})
            await _done(sup, "Recorded: Close")
            async with connected(service.dsn) as conn:
                rows = await conn.fetch(
                    "SELECT id, status, owner, satisfied, customer_words FROM complaints"
                    " ORDER BY id"
                )
            by_id = {r["id"]: r for r in rows}
            assert by_id[new]["status"] == "closed" and by_id[new]["owner"] == "sup"
            assert by_id[new]["satisfied"] is True
            assert by_id[new]["customer_words"] == "thank you, much better now"
            assert by_id[old]["status"] == "closed"

            # A complaint not tied to a call, from the intake form.
            await sup.click("#tab-intake")
            await sup.fill("#intake textarea[name=matter]", "a resident says the gate is broken")
            await sup.fill("#intake input[name=complainant]", "Liu Yang")
            await sup.click("#intake button[type=submit]")
            await sup.wait_for_selector("#intake-status:has-text('Logged as complaint #')")
            async with connected(service.dsn) as conn:
                logged = await conn.fetchrow(
                    "SELECT * FROM complaints WHERE complainant = 'Liu Yang'"
                )
            assert logged["reported_by"] == "sup" and logged["class"] == "ordinary"
            # An agent (any staff member) gets the intake form only.
            desk = await browser.new_page(locale="zh-CN", viewport=WINDOW)
            await desk.goto(f"{base}/complaints")
            await _log_in(desk, "a001", "agent-pw")
            await desk.wait_for_selector("#intake-view:not([hidden])")
            assert await desk.is_hidden("#tab-list") and await desk.is_hidden("#list-view")
            assert await desk.evaluate("document.activeElement.name") == "matter"
            await desk.keyboard.type("电梯按钮失灵")
            await desk.click("#intake button[type=submit]")
            await desk.wait_for_selector("#intake-status:has-text('已登记为第')")
            await desk.close()
            async with connected(service.dsn) as conn:
                by = await conn.fetchval(
                    "SELECT reported_by FROM complaints WHERE matter = '电梯按钮失灵'"
                )
            assert by == "a001"

            await suggestion_and_promised_reply(sup, suggestion)

            # The customer's next pop: neither complaint is open any more.
            await page.wait_for_selector("#state[data-state=ready]", timeout=15_000)
            again = caller(service, HAN, [_phone()], talk=4.0)
            drivers.append(again)
            await again.start()
            await page.wait_for_selector("#ring-label:not([hidden])", timeout=10_000)
            await page.wait_for_selector("#customer-name:has-text('Han Meimei')", timeout=10_000)
            await page.wait_for_selector("#recent-calls li")
            assert await page.locator("#complaints li").count() == 0
            assert await page.is_hidden("#complaints")
            assert errors == []
        finally:
            await browser.close()
            for driver in drivers:
                await driver.stop()


def _phone() -> Any:
    from callcenter.sim.core import PhoneSpec

    return PhoneSpec("1001", "agent-pw")


async def suggestion_and_promised_reply(sup: Any, suggestion: int) -> None:
    """The other tabs: a suggestion assessed, forwarded and answered (adopted); the promised
    reply of the call's record given; a change out of turn refused in words."""
    await sup.click("#tab-suggestions")
    await sup.click(f"#case-rows tr[data-id='{suggestion}'] button.open")
    await sup.wait_for_selector("#case-title:has-text('Recorded')")
    await _act(sup, "Answer to the customer", {"answer": "we will"}, select={"adopted": "true"},
               within="#case-actions")  # fmt: skip
    await sup.wait_for_selector("#case-action-status.error:has-text('Refused: ')")
    await _act(sup, "Assess", {}, select={"feasible": "true", "valuable": "true"},
               within="#case-actions")  # fmt: skip
    await _done(sup, "Recorded: Assess", "#case-action-status")
    await _act(sup, "Forward", {"to": "property management"}, within="#case-actions")
    await _done(sup, "Recorded: Forward", "#case-action-status")
    await _act(sup, "Answer to the customer", {"answer": "open 12:00-13:00 from Monday"},
               select={"adopted": "true"}, within="#case-actions")  # fmt: skip
    await _done(sup, "Recorded: Answer to the customer", "#case-action-status")
    assert "Answered" in await sup.inner_text("#case-title")
    assert await sup.is_hidden("#case-actions")
    await fits(sup, "#case-filters", "#case-rows", "#case-title", "#case-facts")
    await sup.screenshot(path=str(ARTIFACTS / "suggestions-1366x768-en.png"))

    await sup.click("#tab-replies")
    row = '#case-rows tr:has-text("the cleaning company\'s answer")'
    await sup.wait_for_selector(row)
    await sup.click(f"{row} button.open")
    await sup.wait_for_selector("#case-title:has-text('Open')")
    await _act(sup, "Reply given", {"notes": "called, read the answer"}, within="#case-actions")
    await _done(sup, "Recorded: Reply given", "#case-action-status")
    assert "Done" in await sup.inner_text("#case-title")
    await sup.wait_for_selector(row, state="detached")  # open ones only


async def _log_in(page: Any, user: str, password: str) -> None:
    await page.fill("#user_id", user)
    await page.fill("#password", password)
    await page.click("#login button[type=submit]")


async def _act(
    page: Any, summary: str, fields: dict[str, str], *,
    check: str | None = None, select: dict[str, str] | None = None, within: str = "#actions",
) -> None:  # fmt: skip
    """Open the action whose summary reads `summary`, fill it and send it."""
    box = page.locator(f"{within} details", has=page.locator(f"summary:text-is('{summary}')"))
    if await box.get_attribute("open") is None:
        await box.locator("summary").click()
    for name, value in fields.items():
        await box.locator(f"[name={name}]").fill(value)
    if check:
        await box.locator(f"[name={check}]").check()
    for name, value in (select or {}).items():
        await box.locator(f"select[name={name}]").select_option(value)
    await box.locator("button[type=submit]").click()


async def _done(page: Any, text: str, where: str = "#action-status") -> None:
    await page.wait_for_selector(f"{where}:text-is('{text}')", timeout=10_000)
    await asyncio.sleep(0)  # the list is read again after the change
