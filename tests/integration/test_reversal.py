"""红冲 (FACTS §3): the rules of a 红字确认单 (table-driven), and the use cases against a real database (SQLite, and
PostgreSQL when FAPIAO_TEST_DATABASE_URL is set): whole, partial, concurrent partials that would exceed the
blue invoice, the same request id twice, lapse after 72 h, bad input refused with nothing written."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select

from fapiao.adapters.db import InvoiceRow, OrderRow, RedConfirmationRow
from fapiao.adapters.issuer import SandboxIssuer
from fapiao.adapters.pdf import render_invoice_pdf
from fapiao.domain.reversal import LineRequest, ReversalRefused, plan, red_invoice
from fapiao.services.issue import handle_submission
from fapiao.services.reversal import (
    ReversalAsk,
    confirm_reversal,
    issue_red,
    lapse_due,
    request_reversal,
    withdraw_reversal,
)
from fapiao.services.scan import scan_view
from schemas.events import BuyerType, Invoice
from tests.support.pdf import extracted, invoice
from tests.support.services import _accepted_and_submission

SELLER = "91440300MA5G9GK78Y"
NOW = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)

# --- rules -----------------------------------------------------------------------------------------------------
# The blue invoice of tests.test_pdf: line 1 1130.00 @13% (1000.00 + 130.00, qty 1), line 2 100.00 @6%.

BLUE = invoice()
L = LineRequest

REFUSED = [
    ("reason outside the list", "退货", None, [], "RED_REASON"),
    ("a line the invoice lacks", "销货退回", [L(9, amount=D("1"))], [], "RED_UNKNOWN_LINE"),
    ("amount above the line", "销售折让", [L(1, amount=D("1130.01"))], [], "RED_ABOVE_REMAINING"),
    ("quantity above the line", "销货退回", [L(1, quantity=D("2"))], [], "RED_ABOVE_REMAINING"),
    ("both quantity and amount", "销货退回", [L(1, quantity=D("1"), amount=D("1"))], [], "RED_LINE_AMOUNT"),
    ("neither", "销货退回", [L(1)], [], "RED_LINE_AMOUNT"),
    ("three places", "销售折让", [L(1, amount=D("1.001"))], [], "RED_LINE_AMOUNT"),
    ("the same line twice", "销售折让", [L(1, amount=D("1")), L(1, amount=D("1"))], [], "RED_LINE_TWICE"),
    ("no lines", "销售折让", [], [], "RED_NO_LINES"),
]


@pytest.mark.parametrize("name,reason,lines,before,code", REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_rules(name, reason, lines, before, code):
    with pytest.raises(ReversalRefused) as exc:
        plan(BLUE, reason, lines, before)
    assert exc.value.code == code and exc.value.rule


def test_whole_partial_and_what_is_left():
    whole = plan(BLUE, "开票有误", None, [])
    assert [(t.line_no, t.amount, t.tax) for t in whole] == [(1, D("1000.00"), D("130.00")), (2, D("94.34"), D("5.66"))]
    part = plan(BLUE, "销售折让", [L(1, amount=D("113.00"))], [])
    assert [(t.amount, t.tax, t.quantity) for t in part] == [(D("100.00"), D("13.00"), None)]
    rest = plan(BLUE, "销货退回", None, part)  # the whole of what is left
    assert rest[0].amount + rest[0].tax == D("1017.00") and rest[1].amount == D("94.34")
    with pytest.raises(ReversalRefused) as exc:
        plan(BLUE, "销货退回", None, part + rest)
    assert exc.value.code == "RED_FULLY_REVERSED"
    with pytest.raises(ReversalRefused) as exc:
        plan(BLUE, "销售折让", [L(1, amount=D("1017.01"))], part)
    assert exc.value.code == "RED_ABOVE_REMAINING" and "1017.00" in exc.value.rule


def test_red_invoice_is_negative_and_names_the_blue():
    red = red_invoice(BLUE, plan(BLUE, "开票有误", None, []), "26440670700000000124", NOW, "conf-1", "开票有误")
    assert red.red_of == BLUE.number and red.total_with_tax == D("-1230.00") and red.total_tax == D("-135.66")
    assert red.total_with_tax_upper == "（负数）壹仟贰佰叁拾圆整"
    assert [l.quantity for l in red.lines] == [D("-1"), D("-1")] and all(l.amount < 0 for l in red.lines)
    assert BLUE.number in red.remark and "conf-1" in red.remark


def test_red_invoice_pdf_like_the_blue():
    red = red_invoice(BLUE, plan(BLUE, "销货退回", None, []), "26440670700000000124", NOW, "conf-1", "销货退回")
    text = extracted(render_invoice_pdf(red))
    for expected in (
        "电子发票（普通发票）",
        "26440670700000000124",
        "某某科技有限公司",
        "深圳市示例科技有限公司",
        "*文化办公用设备*打印机",
        "（负数）壹仟贰佰叁拾圆整",
        "-1230.00",
        BLUE.number,
        "销货退回",
    ):
        assert expected in text, (expected, text)


# --- use cases on the database -----------------------------------------------------------------------------------


def _blue(sessions, bill_no="RED-1", buyer_type="enterprise") -> Invoice:
    _, ev = _accepted_and_submission(sessions, bill_no=bill_no)
    if buyer_type != "enterprise":
        ev = ev.model_copy(
            update={"buyer": ev.buyer.model_copy(update={"buyer_type": BuyerType(buyer_type), "tax_id": None})}
        )
    [issued] = handle_submission(sessions, SandboxIssuer(sessions), ev)
    return issued.event.invoice


def _ask(blue, request_id="r1", lines=None, reason="销货退回", seller=SELLER, confirmed=False):
    return ReversalAsk(
        seller_tax_id=seller,
        invoice_number=blue.number,
        reason=reason,
        request_id=request_id,
        lines=lines,
        confirmed=confirmed,
    )


def _count(sessions, model=RedConfirmationRow) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_whole_reversal_confirm_and_one_red_invoice(sessions):
    blue = _blue(sessions)
    res = request_reversal(sessions, _ask(blue), now=NOW)
    assert [o.stage for o in res.outcomes] == ["reversals.requested"]
    assert res.confirmation.status == "pending" and res.outcomes[0].event.status == "pending"
    [confirmed] = confirm_reversal(sessions, SELLER, res.confirmation.confirmation_id, now=NOW + timedelta(hours=1))
    assert confirmed.stage == "reversals.confirmed"
    issuer = SandboxIssuer(sessions)
    barrier = threading.Barrier(3)

    def work(_):
        barrier.wait()
        return issue_red(sessions, issuer, confirmed.event)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(work, range(3)))
    results.append(issue_red(sessions, issuer, confirmed.event))  # redelivered later
    events = {o.event.event_id: o.event for r in results for o in r}
    assert len(events) == 1 and {o.stage for r in results for o in r} == {"invoices.issued"}
    red = next(iter(events.values())).invoice
    assert len(red.number) == 20 and red.number.isdigit() and red.number != blue.number
    assert red.red_of == blue.number and red.total_with_tax == -blue.total_with_tax
    with sessions() as s:
        assert s.scalar(select(func.count()).where(InvoiceRow.red_of == blue.number)) == 1
        assert s.scalar(select(OrderRow.status).where(OrderRow.bill_no == "RED-1")) == "reversed"
        conf = s.scalar(select(RedConfirmationRow))
        assert conf.status == "issued" and conf.red_number == red.number
    with pytest.raises(ReversalRefused) as exc:  # nothing is left
        request_reversal(sessions, _ask(blue, "r2"))
    assert exc.value.code == "RED_FULLY_REVERSED" and _count(sessions) == 1


def test_second_scan_shows_reversed(sessions):
    link, ev = _accepted_and_submission(sessions, bill_no="RED-SCAN")
    [issued] = handle_submission(sessions, SandboxIssuer(sessions), ev)
    blue = issued.event.invoice
    res = request_reversal(sessions, _ask(blue, confirmed=True))
    issue_red(sessions, SandboxIssuer(sessions), res.outcomes[-1].event)
    view = scan_view(sessions, link.link_id)
    assert view.status == "issued" and view.invoice.number == blue.number and view.reversal == "已红冲"


def test_individual_buyer_needs_no_confirmation(sessions):
    blue = _blue(sessions, buyer_type="individual")
    res = request_reversal(sessions, _ask(blue))
    assert [o.stage for o in res.outcomes] == ["reversals.requested", "reversals.confirmed"]
    assert res.outcomes[0].event.status == "confirmed"


def test_same_request_id_is_done_once(sessions):
    blue = _blue(sessions)
    lines = [L(1, amount=D("100.00"))]
    first = request_reversal(sessions, _ask(blue, "same", lines))
    again = request_reversal(sessions, _ask(blue, "same", lines))
    assert again.repeated and again.confirmation.confirmation_id == first.confirmation.confirmation_id
    assert [o.event.event_id for o in again.outcomes] == [o.event.event_id for o in first.outcomes]
    with sessions() as s:
        assert s.scalar(select(InvoiceRow.reversed_with_tax).where(InvoiceRow.number == blue.number)) == D("100.00")
    assert _count(sessions) == 1


def test_partial_then_the_rest_nets_to_zero(sessions):
    blue = _blue(sessions)
    issuer = SandboxIssuer(sessions)
    reds = []
    for rid, lines in (("p1", [L(1, amount=D("500.00"))]), ("p2", [L(2, quantity=D("1"))]), ("p3", None)):
        res = request_reversal(sessions, _ask(blue, rid, lines, reason="销售折让", confirmed=True))
        [out] = issue_red(sessions, issuer, res.outcomes[-1].event)
        reds.append(out.event.invoice)
    assert [r.total_with_tax for r in reds] == [D("-500.00"), D("-100.00"), D("-630.00")]
    assert sum(r.total_amount for r in reds) == -blue.total_amount and sum(r.total_tax for r in reds) == -blue.total_tax
    assert len({r.number for r in reds}) == 3


def test_concurrent_partials_never_exceed_the_blue_invoice(sessions):
    blue = _blue(sessions)
    barrier = threading.Barrier(6)

    def ask(i):
        barrier.wait()
        try:
            return request_reversal(sessions, _ask(blue, f"c{i}", [L(1, amount=D("300.00"))]))
        except ReversalRefused as exc:
            return exc

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(ask, range(6)))
    done = [r for r in results if not isinstance(r, ReversalRefused)]
    refused = [r for r in results if isinstance(r, ReversalRefused)]
    assert len(done) == 3 and {r.code for r in refused} == {"RED_ABOVE_REMAINING"}  # 3 × 300 ≤ 1130 < 4 × 300
    with sessions() as s:
        taken = s.scalar(select(func.sum(RedConfirmationRow.total_with_tax)))
        assert taken == D("900.00")
        assert s.scalar(select(InvoiceRow.reversed_with_tax).where(InvoiceRow.number == blue.number)) == taken


def test_unconfirmed_lapses_after_72_hours(sessions):
    blue = _blue(sessions)
    res = request_reversal(sessions, _ask(blue), now=NOW)
    cid = res.confirmation.confirmation_id
    assert lapse_due(sessions, now=NOW + timedelta(hours=71, minutes=59)) == []
    with pytest.raises(ReversalRefused) as exc:  # too late to confirm
        confirm_reversal(sessions, SELLER, cid, now=NOW + timedelta(hours=72))
    assert exc.value.code == "RED_LAPSED"
    [cancelled] = lapse_due(sessions, now=NOW + timedelta(hours=72))
    assert cancelled.stage == "reversals.cancelled" and cancelled.event.cause == "lapsed"
    assert lapse_due(sessions, now=NOW + timedelta(hours=73)) == []
    with sessions() as s:
        assert s.scalar(select(RedConfirmationRow.status)) == "cancelled"
        assert s.scalar(select(InvoiceRow.reversed_with_tax).where(InvoiceRow.number == blue.number)) == 0
    again = request_reversal(sessions, _ask(blue, "r-again"), now=NOW + timedelta(hours=80))  # free again
    assert again.confirmation.total_with_tax == blue.total_with_tax


def test_withdraw_frees_the_amount(sessions):
    blue = _blue(sessions)
    res = request_reversal(sessions, _ask(blue))
    [ev] = withdraw_reversal(sessions, SELLER, res.confirmation.confirmation_id)
    assert ev.event.cause == "withdrawn"
    with pytest.raises(ReversalRefused) as exc:
        confirm_reversal(sessions, SELLER, res.confirmation.confirmation_id)
    assert exc.value.code == "RED_CANCELLED"
    request_reversal(sessions, _ask(blue, "r2"))


BAD = [
    ("unknown invoice", dict(number="99999999999999999999"), "RED_UNKNOWN_INVOICE"),
    ("foreign seller", dict(seller="91440300358768292H"), "RED_FOREIGN_SELLER"),
    ("reason outside the list", dict(reason="不想要了"), "RED_REASON"),
    ("unknown line", dict(lines=[L(7, amount=D("1"))]), "RED_UNKNOWN_LINE"),
    ("above what is left", dict(lines=[L(2, amount=D("100.01"))]), "RED_ABOVE_REMAINING"),
]


@pytest.mark.parametrize("name,change,code", BAD, ids=[b[0] for b in BAD])
def test_bad_input_is_refused_and_nothing_written(sessions, name, change, code):
    blue, change = _blue(sessions), dict(change)
    if "number" in change:
        blue = blue.model_copy(update={"number": change.pop("number")})
    with pytest.raises(ReversalRefused) as exc:
        request_reversal(sessions, _ask(blue, **change))
    assert exc.value.code == code and exc.value.rule
    assert _count(sessions) == 0 and _count(sessions, InvoiceRow) == 1
    with sessions() as s:
        assert s.scalar(select(InvoiceRow.reversed_with_tax)) == 0


def test_migration_0008_goes_down_and_up_again(db_url):
    """The unique order_id 0008 replaces is found by its columns, so upgrading after a downgrade works too."""
    from fapiao.migrate import downgrade, upgrade

    downgrade(db_url, "0007")
    upgrade(db_url)
