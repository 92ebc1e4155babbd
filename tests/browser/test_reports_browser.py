"""The reports on the supervisor page, in a real headless Chromium (Debian's): the
monthly report the service wrote is listed and downloads whole, and a month asked for
in the form downloads as the format chosen, read back."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from callcenter.call_side.service import Service
from tests.browser.test_complaints_browser import WINDOW, _log_in
from tests.browser.test_desktop_browser import ARTIFACTS, headless


async def test_a_supervisor_downloads_the_monthly_report_and_asks_for_another(
    service: Service, tmp_path: Path
) -> None:
    base = f"http://{service.http_addresses[0]}"
    written = service.settings.service.reports_dir
    written.mkdir(parents=True)
    monthly = "\ufeff热线服务统计报表 / Hotline service report\r\n".encode() + b"x" * 3000
    (written / "report-2026-10.csv").write_bytes(monthly)
    async with headless() as browser:
        page = await browser.new_page(locale="en-US", viewport=WINDOW, accept_downloads=True)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            await page.goto(f"{base}/supervisor")
            await _log_in(page, "sup", "sup-pw")
            link = page.locator("#report-files a[data-file='report-2026-10.csv']")
            await link.wait_for(timeout=10_000)
            assert await link.inner_text() == "report-2026-10.csv (3 KB)"
            async with page.expect_download() as got:
                await link.click()
            download = await got.value
            assert download.suggested_filename == "report-2026-10.csv"
            assert Path(await download.path()).read_bytes() == monthly

            await page.fill("#report-period", "2026-11")
            await page.select_option("#report-format", "csv")
            async with page.expect_download() as got:
                await page.click("#report-form button[type=submit]")
            download = await got.value
            assert download.suggested_filename == "report-2026-11.csv"
            rows = list(csv.reader(io.StringIO(
                Path(await download.path()).read_bytes().decode("utf-8-sig"))))  # fmt: skip
            assert rows[2][:2] == ["2026-11", service.settings.reports.time_zone]
            await page.wait_for_function("document.getElementById('report-status').textContent === ''")

            await page.fill("#report-period", "2026-13")  # the server says why not
            await page.click("#report-form button[type=submit]")
            await page.wait_for_selector("#report-status:has-text('no month')")
            assert errors == []
        except Exception:
            await page.screenshot(path=str(ARTIFACTS / "reports-failure.png"))
            raise
