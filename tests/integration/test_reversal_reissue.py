"""重开 against a real database (SQLite, and PostgreSQL when FAPIAO_TEST_DATABASE_URL is set): after a full 红冲
for a wrong title, a corrected title issues a new blue invoice for the same order (its second generation, a new
number), once however often it is asked or delivered; the order keeps both; refused (rule named) otherwise."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select

from fapiao.adapters.db import InvoiceRow, OrderRow
from fapiao.adapters.issuer import SandboxIssuer
from fapiao.domain.reversal import LineRequest, ReversalRefused
from fapiao.services.issue import handle_submission
from fapiao.services.orders import find_orders
from fapiao.services.reissue import reissue_event
from fapiao.services.reversal import ReversalAsk, issue_red, request_reversal
from fapiao.services.scan import scan_view
from tests.support.services import _accepted_and_submission

SELLER = "91440300MA5G9GK78Y"
FIXED = {
    "buyer_type": "enterprise",
    "title": "某某科技有限公司深圳分公司",
    "tax_id": "91440300687582704U",
    "email": "finance@example.cn",
}


def _issued(sessions, bill_no="RE-1"):
    link, ev = _accepted_and_submission(sessions, bill_no=bill_no)
    [out] = handle_submission(sessions, SandboxIssuer(sessions), ev)
    return link, ev, out.event.invoice


def _reverse(sessions, blue, reason="开票有误", lines=None, rid="r1"):
    res = request_reversal(sessions, ReversalAsk(SELLER, blue.number, reason, rid, lines=lines, confirmed=True))
    return issue_red(sessions, SandboxIssuer(sessions), res.outcomes[-1].event)


def test_reissue_after_full_reversal_for_a_wrong_title(sessions):
    link, first_ev, blue = _issued(sessions)
    _reverse(sessions, blue)
    ev = reissue_event(sessions, SELLER, "RE-1", FIXED)
    assert ev.merchant_approved and ev.buyer.title == FIXED["title"]
    assert reissue_event(sessions, SELLER, "RE-1", FIXED).event_id == ev.event_id  # asked twice: one request
    issuer = SandboxIssuer(sessions)
    [out] = handle_submission(sessions, issuer, ev)
    again = handle_submission(sessions, issuer, ev)  # redelivered
    late = handle_submission(sessions, issuer, first_ev)  # the first title, redelivered late
    new = out.event.invoice
    assert new.number != blue.number and new.buyer.title == FIXED["title"] and new.red_of is None
    assert new.total_with_tax == blue.total_with_tax
    assert again[0].event.event_id == out.event.event_id and late[0].event.invoice.number == new.number
    with sessions() as s:
        rows = s.execute(select(InvoiceRow.generation, InvoiceRow.red_of).order_by(InvoiceRow.id)).all()
        assert [tuple(r) for r in rows] == [(1, None), (1, blue.number), (2, None)]
        assert s.scalar(select(OrderRow.status)) == "issued"
    view = scan_view(sessions, link.link_id)
    assert view.invoice.number == new.number and view.reversal is None
    [d] = find_orders(sessions, "RE-1")
    assert [(i["color"], i["generation"]) for i in d.invoices] == [("blue", 1), ("red", 1), ("blue", 2)]
    with pytest.raises(ReversalRefused) as exc:  # the new invoice stands: nothing to re-issue
        reissue_event(sessions, SELLER, "RE-1", FIXED)
    assert exc.value.code == "REISSUE_NOT_REVERSED"


def test_reissue_refusals(sessions):
    _, _, blue = _issued(sessions, "RE-2")
    with pytest.raises(ReversalRefused) as exc:
        reissue_event(sessions, SELLER, "RE-2", FIXED)
    assert exc.value.code == "REISSUE_NOT_REVERSED"
    _reverse(sessions, blue, "开票有误", [LineRequest(1, amount=Decimal("100.00"))])
    with pytest.raises(ReversalRefused) as exc:  # partly reversed only
        reissue_event(sessions, SELLER, "RE-2", FIXED)
    assert exc.value.code == "REISSUE_NOT_REVERSED"
    _reverse(sessions, blue, "销货退回", rid="r2")  # the rest went back as goods returned
    with pytest.raises(ReversalRefused) as exc:
        reissue_event(sessions, SELLER, "RE-2", FIXED)
    assert exc.value.code == "REISSUE_REASON"
    with pytest.raises(ReversalRefused) as exc:
        reissue_event(sessions, SELLER, "NOPE", FIXED)
    assert exc.value.code == "REISSUE_UNKNOWN_ORDER"


def test_reissue_title_errors_by_field(sessions):
    _, _, blue = _issued(sessions, "RE-3")
    _reverse(sessions, blue)
    errors = reissue_event(sessions, SELLER, "RE-3", {**FIXED, "tax_id": "91500107MAC3BEU123"})
    assert isinstance(errors, dict) and "tax_id" in errors
    with sessions() as s:
        assert (
            s.scalar(select(OrderRow.generation)) == 1 and s.scalar(select(func.count()).select_from(InvoiceRow)) == 2
        )
