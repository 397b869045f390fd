"""The buyer's flow in headless Chromium against the running system: open a pushed order's link, submit as 企业
with a wrong tax ID and see the error beside the field, correct it, submit, watch 开票中 turn into the issued
invoice without reloading, download the PDF, and scan again to see the second-scan view."""

import json

import pytest

from fapiao.adapters.kafka import producer
from fapiao.testing import TopicReader, json_value
from fapiao.topics import order_key
from tests.conftest import sample_push
from tests.test_browser_admin import CHROMIUM, CHROMIUM_ARGS
from tests.test_e2e import system  # noqa: F401  (the running system: broker, workers, gateway, SMTP)

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def test_buyer_scans_submits_and_downloads(system, smtp_server, tmp_path):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    s = system
    key = order_key("91440300MA5G9GK78Y", "H5-0001")
    p = producer(s)
    p.send(s.topics["orders.pushed"], key=key, value=json.dumps(sample_push(billNo="H5-0001")).encode())
    p.flush()
    p.close()
    reader = TopicReader(s, s.topics["orders.accepted"])
    link = json_value(reader.wait_for(lambda r: r.key == key, timeout=90))["link"]
    reader.close()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN")  # a phone
        try:
            page.goto(link)
            expect(page.locator("#bill-no")).to_have_text("H5-0001")
            expect(page.locator(".amount")).to_have_text("¥1230.00")
            page.check("input[name=buyer_type][value=enterprise]")
            page.fill("#title", "某某科技有限公司")
            page.fill("#tax_id", "91500107MAC3BEU123")
            page.fill("#email", "buyer@example.cn")
            page.click("button[type=submit]")
            expect(page.locator("#err-tax_id")).to_contain_text("校验位")
            expect(page.locator("#title")).to_have_value("某某科技有限公司")  # nothing typed is lost
            page.fill("#tax_id", "91440300358768292H")
            page.click("button[type=submit]")
            expect(page.locator("#issued")).to_be_visible(timeout=60_000)  # 开票中, then the invoice, no reload
            number = page.locator("#invoice-number").inner_text()
            assert len(number) == 20 and number.isdigit()
            with page.expect_download() as download_info:
                page.click("#download-pdf")
            pdf = tmp_path / "invoice.pdf"
            download_info.value.save_as(pdf)
            assert pdf.read_bytes().startswith(b"%PDF") and download_info.value.suggested_filename == f"{number}.pdf"

            second = browser.new_page(viewport={"width": 390, "height": 844})
            second.goto(link)  # the second scan
            expect(second.locator("#issued")).to_contain_text(number)
            for _ in range(60):  # the e-mail may still be on its way: look again, as a buyer would
                if "已发送" in second.locator("#issued").inner_text():
                    break
                second.wait_for_timeout(500)
                second.reload()
            expect(second.locator("#issued")).to_contain_text("已发送")
            second.screenshot(path=str(tmp_path / "second-scan.png"))
        finally:
            browser.close()
