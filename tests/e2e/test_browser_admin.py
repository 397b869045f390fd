"""In headless Chromium (Debian's, driven by Playwright): sign in, add an organisation, add and save a
动态二维码设置, 同步至移动云, generate a static QR and view it."""

import io
import os

import zxingcpp
from PIL import Image

import pytest
from tests.support.samples import ADMIN_TOKEN as TOKEN
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium); CI installs it", allow_module_level=True
    )


def test_click_through_settings(admin_gateway, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    base = admin_gateway().base_url
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(locale="zh-CN")
        try:
            page.goto(f"{base}/admin/settings")
            expect(page).to_have_url(f"{base}/admin/login")
            page.fill("#token", "wrong-token-xyz")
            page.click("button[type=submit]")
            expect(page.locator("#err-token")).to_have_text("令牌不正确")
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            expect(page).to_have_url(f"{base}/admin")

            page.goto(f"{base}/admin/orgs")
            page.fill("#org_code", "SZ01")
            page.fill("#seller_name", "深圳市示例科技有限公司")
            page.fill("#tax_id", "91440300MA5G9GK78X")
            page.click("text=保存")
            expect(page.locator("#err-tax_id")).to_contain_text("校验位")
            page.fill("#tax_id", "91440300MA5G9GK78Y")
            page.click("text=保存")
            expect(page.locator("#orgs")).to_contain_text("SZ01")

            page.goto(f"{base}/admin/settings")
            page.click("#save")  # 新增 with nothing chosen: every rule shows beside its field
            expect(page.locator("#err-org_code")).to_be_visible()
            expect(page.locator("#err-kinds")).to_contain_text("至少选择一种")
            page.select_option("#org_code", "SZ01")
            page.check("input[name=kinds][value='10xdp']")
            page.check("input[name=kinds][value='08xdp']")
            page.fill("#validity_days", "15")
            page.click("#save")
            row = page.locator("#settings tr", has_text="SZ01")
            expect(row).to_contain_text("数电票（普通发票）")
            expect(row).to_contain_text("15")
            expect(page.locator("#unsynced")).to_be_visible()
            page.click("#sync")
            expect(page.locator("#synced-msg")).to_contain_text("已同步")
            expect(page.locator("#unsynced")).to_have_count(0)

            page.goto(f"{base}/admin/static")
            expect(page.locator("#static")).to_contain_text("未生成")
            page.locator("#static tr", has_text="SZ01").locator("button.generate").click()
            expect(page.locator("#static-view")).to_be_visible()
            link = page.locator("#static-link").inner_text()
            assert link.startswith(f"{base}/s/")
            page.wait_for_function("document.querySelector('#static-qr').naturalWidth > 0")
            # The SVG as the browser draws it decodes back to the exact link.
            shot = page.locator("#static-qr").screenshot()
            [decoded] = zxingcpp.read_barcodes(Image.open(io.BytesIO(shot)))
            assert decoded.text == link
            page.goto(f"{base}/admin/static")
            page.click("a.generated")  # 查看二维码 from the list
            expect(page.locator("#static-link")).to_have_text(link)
            page.screenshot(path=str(tmp_path / "static.png"))
        finally:
            browser.close()
