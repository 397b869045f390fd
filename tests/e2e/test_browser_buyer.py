"""The buyer's flow in headless Chromium against the running system: open a pushed order's link, submit as 企业
with a wrong tax ID and see the error beside the field, correct it (after editing the form's hidden kind: the pushed
kind is issued all the same), submit, watch 开票中 turn into the issued invoice without reloading, download the PDF,
and scan again to see the second-scan view.

Every buyer page (form, errors, 开票中, issued, invoice view, second scan, expired link) is also looked at on a phone
(390×844) and a tablet (768×1024) with Chromium's device emulation: no element is wider than the viewport and every
button is at least 44 px high. Screenshots land in ``var/screenshots/`` (git-ignored; ``FAPIAO_SCREENSHOTS`` moves
them) for a developer to look at."""

import os
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from fapiao.adapters.kafka import producer
from fapiao.domain.links import make_token, read_token
from fapiao.gateway.rendering import render
from fapiao.services.scan import ScanView, scan_view
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.kafka import push

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

SHOTS = Path(os.environ.get("FAPIAO_SCREENSHOTS") or Path(__file__).parents[2] / "var" / "screenshots")
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "tablet": {"width": 768, "height": 1024}}
FITS = """() => {
  const w = document.documentElement.clientWidth;
  const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '');
  const wide = [...document.querySelectorAll('body *')].filter(e => {
    const r = e.getBoundingClientRect(); return r.width > 0 && (r.right > w + 0.5 || r.left < -0.5);
  }).map(e => name(e) + ' ' + Math.round(e.getBoundingClientRect().left) + '..' + Math.round(e.getBoundingClientRect().right));
  const small = [...document.querySelectorAll('button, .btn, input[type=submit], select')].filter(e => {
    const r = e.getBoundingClientRect(); return r.width > 0 && r.height < 44;
  }).map(e => name(e) + ' ' + Math.round(e.getBoundingClientRect().height) + 'px');
  const spill = [...document.querySelectorAll('.card *')].filter(e => {
    const r = e.getBoundingClientRect(), c = e.closest('.card').getBoundingClientRect();
    return r.width > 0 && (r.right > c.right + 0.5 || r.left < c.left - 0.5);
  }).map(e => name(e) + ' spills out of its card');
  return {wide: wide.concat(spill), small, overflow: document.documentElement.scrollWidth - w};
}"""


def look(page, name: str) -> None:
    """The page fits its viewport (nothing spills out of its card either), every button can be tapped, and a
    screenshot is kept."""
    size = page.viewport_size
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{size['width']}x{size['height']}.png"), full_page=True)
    fit = page.evaluate(FITS)
    assert fit == {"wide": [], "small": [], "overflow": 0}, (name, size, fit)


def test_buyer_scans_submits_and_downloads(system, sessions, smtp_server, tmp_path):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    s = system
    link = push(s, "H5-0001")
    secret = s.link_secret.get_secret_value().encode()

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        pages = {
            v: browser.new_page(
                viewport=size,
                locale="zh-CN",
                is_mobile=v == "phone",
                has_touch=True,
                device_scale_factor=2 if v == "phone" else 1,
            )
            for v, size in VIEWPORTS.items()
        }
        page = pages["phone"]
        try:
            for v, p in pages.items():
                p.goto(link)
                expect(p.locator("#bill-no")).to_have_text("H5-0001")
                assert p.title() == "申请开票"
                look(p, "1-form")
                p.click("button[type=submit]")  # nothing filled in: every error beside its field
                expect(p.locator("#err-title")).to_be_visible()
                look(p, "2-errors")

            expect(page.locator(".amount")).to_have_text("¥1230.00")
            page.check("input[name=buyer_type][value=enterprise]")
            page.fill("#title", "某某科技有限公司")
            page.fill("#tax_id", "91500107MAC3BEU123")
            page.fill("#email", "buyer@example.cn")
            page.click("button[type=submit]")
            expect(page.locator("#err-tax_id")).to_contain_text("校验位")
            expect(page.locator("#title")).to_have_value("某某科技有限公司")  # nothing typed is lost
            page.fill("#tax_id", "91440300358768292H")
            # The buyer cannot switch a pushed order's kind: edit the hidden field to 专票 and submit.
            page.eval_on_selector("input[name=invoice_kind]", "e => e.value = '08xdp'")
            page.click("button[type=submit]")
            expect(page.locator("#issued")).to_be_visible(timeout=60_000)  # 开票中, then the invoice, no reload
            expect(page).to_have_title("发票已开具")
            expect(page.locator("#heading")).to_have_text("发票已开具")
            number = page.locator("#invoice-number").inner_text()
            assert len(number) == 20 and number.isdigit()
            with page.expect_download() as download_info:
                page.click("#download-pdf")
            pdf = tmp_path / "invoice.pdf"
            download_info.value.save_as(pdf)
            assert pdf.read_bytes().startswith(b"%PDF") and download_info.value.suggested_filename == f"{number}.pdf"

            link_id = read_token(secret, link.rsplit("/", 1)[1]).link_id
            view = scan_view(sessions, link_id)
            expired = f"{s.base_url}/q/{make_token(secret, link_id, datetime.now(timezone.utc) - timedelta(days=1))}"
            for v, p in pages.items():
                p.goto(link)  # the second scan
                expect(p.locator("#issued")).to_contain_text(number)
                look(p, "4-issued")
                p.goto(f"{link}/invoice.html")
                expect(p.locator("h1")).to_have_text("电子发票（普通发票）")  # the pushed kind, not the edited one
                look(p, "5-invoice")
                p.goto(expired)
                expect(p.locator("h1")).to_have_text("二维码已过期")
                look(p, "7-expired")

                # 开票中 lasts a moment on a fast system: the page exactly as the gateway serves it in that state.
                p.set_content(
                    render(
                        "h5.html",
                        view=ScanView(view.order, view.order_key, "submitted"),
                        token="t",
                        form={},
                        errors={},
                        special=False,
                    ).text
                )
                expect(p).to_have_title("开票中")
                look(p, "3-issuing")

            second = pages["phone"]
            second.goto(link)
            for _ in range(60):  # the e-mail may still be on its way: look again, as a buyer would
                if "已发送" in second.locator("#issued").inner_text():
                    break
                second.wait_for_timeout(500)
                second.reload()
            expect(second.locator("#issued")).to_contain_text("已发送")
            for v, p in pages.items():
                p.goto(link)
                look(p, "6-second-scan")

            # 默认开票: the setting's own QR, where the buyer types the amount of a preset sales order.
            key = set_preset(s, sessions)
            for v, p in pages.items():
                p.goto(f"{s.base_url}/p/{key}")
                expect(p.locator("#preset-goods")).to_have_text("*餐饮服务*餐费")
                look(p, "8-preset")
                p.fill("#amount", "500.01")
                p.click("#next")
                expect(p.locator("#problem")).to_contain_text("500.00")
                look(p, "8-preset-error")
            page.fill("#amount", "88.50")
            page.click("#next")
            expect(page.locator("#bill-no")).to_contain_text("YS")
            expect(page.locator(".amount")).to_have_text("¥88.50")
        finally:
            browser.close()


def set_preset(s, sessions) -> str:
    """Give the demo setting a 默认开票 preset (at most 500.00) and sync it to the scan side; returns its key值."""
    from fapiao.services import settings_admin as svc

    [row] = svc.list_qr_settings(sessions)
    done = svc.edit_qr_setting(
        sessions,
        row.key,
        {
            "default_issue": "是",
            "preset_goods_name": "*餐饮服务*餐费",
            "preset_revenue_code": "3070401000000000000",
            "preset_tax_rate": "6%",
            "preset_amount_mode": "max",
            "preset_amount": "500",
        },
    )
    assert not isinstance(done, dict), done
    p = producer(s)
    for k, value in svc.sync_records(sessions):
        p.send(s.topics["settings"], key=k, value=value)
    p.flush()
    p.close()
    url = f"{s.base_url}/p/{row.key}"
    for _ in range(100):  # the gateway reads the settings topic within moments
        try:
            with urllib.request.urlopen(url, timeout=5):
                return row.key
        except urllib.error.HTTPError:
            time.sleep(0.2)
    raise AssertionError("the preset never reached the scan side")
