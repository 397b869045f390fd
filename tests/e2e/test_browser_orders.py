"""In headless Chromium (Debian's, driven by Playwright): the admin's order page (find the order, read its
timeline, 红冲 part of it from the form, confirm the rest, 重开 with a corrected title) and the buyer's second
scan of a fully reversed invoice showing 已红冲. The red invoices are issued by the service the worker runs."""

import os
import shutil

import pytest
from sqlalchemy import select

from fapiao.adapters.db import OrderRow, RedConfirmationRow
from fapiao.adapters.issuer import SandboxIssuer
from fapiao.services.ingest import LinkMinter
from fapiao.services.issue import handle_submission
from fapiao.services.reversal import issue_red
from schemas.reversals import ReversalConfirmed
from tests.support.samples import ADMIN_TOKEN as TOKEN
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.services import _accepted_and_submission

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium); CI installs it", allow_module_level=True
    )
assert shutil  # the skip above uses the same chromium lookup as the other browser tests

SELLER = "91440300MA5G9GK78Y"


def _issue_confirmed_reds(sessions):
    """What the invoice-issue worker does with each reversals.confirmed."""
    with sessions() as s:
        confs = s.scalars(select(RedConfirmationRow).where(RedConfirmationRow.status == "confirmed")).all()
    for c in confs:
        issue_red(
            sessions,
            SandboxIssuer(sessions),
            ReversalConfirmed(
                event_id=c.confirmation_id,
                order_key=f"{SELLER}:BR-1",
                confirmation_id=c.confirmation_id,
                blue_number=c.blue_number,
            ),
        )


def test_admin_reverses_and_reissues_and_the_buyer_sees_it(admin_gateway, sessions):
    from playwright.sync_api import expect, sync_playwright

    s = admin_gateway()
    base = s.base_url
    _, ev = _accepted_and_submission(sessions, bill_no="BR-1")
    [out] = handle_submission(sessions, SandboxIssuer(sessions), ev)
    blue = out.event.invoice
    with sessions() as db:
        order = db.scalar(select(OrderRow))
        buyer_link = LinkMinter(s.link_secret.get_secret_value().encode(), base).url(
            order.link_id, order.link_expires_at
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(locale="zh-CN")
        try:
            page.goto(f"{base}/admin/login")
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            page.goto(f"{base}/admin/orders")
            page.select_option("select[name=status]", "issued")
            page.click("#order-filters button[type=submit]")
            expect(page.locator("#orders")).to_contain_text(blue.number)
            page.click("#orders a:has-text('BR-1')")
            expect(page.locator("#order-status")).to_have_text("已开票")
            expect(page.locator("#timeline tr[data-step=issued]")).to_contain_text(blue.number)

            # 部分红冲 of a wrong title: line 1 by 113.00, the buyer has confirmed already.
            page.check("input[name=mode][value=lines]")
            page.fill("input[name=amount_1]", "2000")
            page.click("#reverse-submit")
            expect(page.locator("#problem")).to_contain_text("RED_ABOVE_REMAINING")
            page.check("input[name=mode][value=lines]")
            page.select_option("#reason", "开票有误")
            page.fill("input[name=amount_1]", "113.00")
            page.check("input[name=confirmed]")
            page.click("#reverse-submit")
            expect(page.locator("#done-msg")).to_contain_text("已确认")
            _issue_confirmed_reds(sessions)

            # The rest, for a wrong title: 待确认 until the buyer's confirmation is recorded.
            page.reload()
            page.select_option("#reason", "开票有误")
            page.click("#reverse-submit")
            expect(page.locator("#done-msg")).to_contain_text("待确认")
            page.click("button.confirm")
            expect(page.locator("#done-msg")).to_contain_text("已确认")
            _issue_confirmed_reds(sessions)

            page.goto(buyer_link)  # the buyer's second scan
            expect(page.locator("#invoice-number")).to_have_text(blue.number)
            expect(page.locator("#reversal-state")).to_have_text("已红冲")

            page.goto(f"{base}/admin/orders/{SELLER}/BR-1")
            expect(page.locator("#order-status")).to_have_text("已红冲")
            expect(page.locator("#confirmations .conf-status")).to_have_text(["已开具", "已开具"])
            page.select_option("select[name=buyer_type]", "enterprise")
            page.fill("#reissue-title", "某某科技有限公司深圳分公司")
            page.fill("input[name=tax_id]", "91440300687582704U")
            page.click("#reissue-submit")
            expect(page.locator("#problem")).to_contain_text("email")  # the buyer's rules apply: named by field
            page.select_option("select[name=buyer_type]", "enterprise")
            page.fill("#reissue-title", "某某科技有限公司深圳分公司")
            page.fill("input[name=tax_id]", "91440300687582704U")
            page.fill("input[name=email]", "finance@example.cn")
            page.click("#reissue-submit")
            expect(page.locator("#done-msg")).to_contain_text("已提交重开")
        finally:
            browser.close()
