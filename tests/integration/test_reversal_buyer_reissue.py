"""重开 by the buyer through the original QR link (FAPIAO_BUYER_REISSUE=true) on a running gateway with the real
broker: offered only once the invoice is fully reversed for 开票有误; a wrong tax ID is named by field; a good
title publishes the re-issue, the page says 开票中 until the new invoice is issued, then shows it."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from fapiao.adapters.db import OrderRow
from fapiao.adapters.issuer import SandboxIssuer
from fapiao.services.ingest import LinkMinter
from fapiao.services.issue import handle_submission
from fapiao.services.reversal import ReversalAsk, issue_red, request_reversal
from fapiao.testing import TopicReader
from schemas.events import BuyerSubmitted
from tests.support.http import http
from tests.support.services import _accepted_and_submission

pytestmark = pytest.mark.kafka
SELLER = "91440300MA5G9GK78Y"


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"buyer_reissue": True})


def test_buyer_reissues_through_the_link(admin_gateway, sessions):
    s = admin_gateway()
    _, ev = _accepted_and_submission(sessions, bill_no="BUY-RE")
    [out] = handle_submission(sessions, SandboxIssuer(sessions), ev)
    blue = out.event.invoice
    with sessions() as db:
        order = db.scalar(select(OrderRow))
    link = LinkMinter(s.link_secret.get_secret_value().encode(), s.base_url).url(order.link_id, order.link_expires_at)
    status, page = http(link)
    assert status == 200 and 'id="reissue-form"' not in page
    res = request_reversal(sessions, ReversalAsk(SELLER, blue.number, "开票有误", "b1", confirmed=True))
    issue_red(sessions, SandboxIssuer(sessions), res.outcomes[-1].event)
    status, page = http(link)
    assert status == 200 and "已红冲" in page and 'id="reissue-form"' in page

    fixed = {
        "buyer_type": "enterprise",
        "title": "某某科技有限公司深圳分公司",
        "tax_id": "91500107MAC3BEU123",
        "email": "finance@example.cn",
    }
    status, page = http(link + "/reissue", fixed)
    assert status == 422 and 'id="err-tax_id"' in page
    status, _ = http(link + "/reissue", {**fixed, "tax_id": "91440300687582704U"})
    assert status == 303
    assert json.loads(http(link + "/status")[1])["status"] == "submitted"  # 开票中 until the new one is issued
    reader = TopicReader(s, s.topics["buyer.submitted"])
    try:
        rec = reader.wait_for(lambda r: r.key == f"{SELLER}:BUY-RE".encode(), timeout=30)
    finally:
        reader.close()
    submitted = BuyerSubmitted.model_validate_json(rec.value)
    assert submitted.merchant_approved and submitted.buyer.title == fixed["title"]
    [again] = handle_submission(sessions, SandboxIssuer(sessions), submitted)  # what invoice-issue does
    new = again.event.invoice
    status, page = http(link)
    assert status == 200 and new.number in page and "已红冲" not in page
    status, page = http(link + "/reissue", {**fixed, "tax_id": "91440300687582704U"})  # nothing left to re-issue
    assert status == 422 and "尚未全额红冲" in page
