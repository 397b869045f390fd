"""Use cases against a real database (SQLite, and PostgreSQL when FAPIAO_TEST_DATABASE_URL is set):
idempotent intake, conflicts, races, exactly one invoice and one e-mail per request."""

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from sqlalchemy import func, select

from fapiao.adapters.db import InvoiceRow, OrderRow
from fapiao.adapters.issuer import SandboxIssuer
from fapiao.services.issue import handle_submission
from fapiao.services.merchants import ensure_demo_merchant
from fapiao.services.scan import scan_view
from tests.support.services import _accepted_and_submission, push


def count(sessions, model):
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_accept_then_duplicate_then_conflict(sessions):
    with sessions() as s:
        ensure_demo_merchant(s)
    [first] = push(sessions)
    assert first.stage == "orders.accepted"
    [again] = push(sessions)
    assert again.stage == "orders.accepted"
    assert again.event.link == first.event.link and again.event.event_id == first.event.event_id
    assert count(sessions, OrderRow) == 1
    [conflict] = push(sessions, remark="changed")
    assert conflict.stage == "orders.rejected"
    assert [v.code for v in conflict.event.violations] == ["00565"]
    assert count(sessions, OrderRow) == 1


def test_rejected_carries_original_and_all_violations(sessions):
    with sessions() as s:
        ensure_demo_merchant(s)
    [out] = push(sessions, invoiceType="026", billNo="")
    assert out.stage == "orders.rejected"
    assert {"00603", "00552"} <= {v.code for v in out.event.violations}
    assert out.event.original["invoiceType"] == "026"
    assert count(sessions, OrderRow) == 0


def test_racing_workers_create_one_order(sessions):
    with sessions() as s:
        ensure_demo_merchant(s)
    barrier = threading.Barrier(4)

    def race(_):
        barrier.wait()
        return push(sessions, billNo="RACE-1")[0]

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(race, range(4)))
    assert {r.stage for r in results} == {"orders.accepted"}
    assert len({r.event.link for r in results}) == 1
    assert count(sessions, OrderRow) == 1


def test_issue_exactly_once_under_redelivery_and_race(sessions, tmp_path):
    link, ev = _accepted_and_submission(sessions)
    issuer = SandboxIssuer(sessions)
    barrier = threading.Barrier(3)

    def work(_):
        barrier.wait()
        return handle_submission(sessions, issuer, ev)

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(work, range(3)))
    results.append(handle_submission(sessions, issuer, ev))  # a redelivery later
    numbers = {o.event.invoice.number for r in results for o in r if o.stage == "invoices.issued"}
    assert len(numbers) == 1
    assert count(sessions, InvoiceRow) == 1
    inv = results[0][0].event.invoice
    assert inv.total_with_tax == Decimal("1230.00") and inv.total_tax == Decimal("135.66")
    assert inv.total_with_tax_upper == "壹仟贰佰叁拾圆整"
    assert scan_view(sessions, link.link_id).status == "issued"
    # Issuing draws nothing and asks for no delivery: the render stage does both from invoices.issued.
    assert {o.stage for r in results for o in r} == {"invoices.issued"}
    assert len({o.event.event_id for r in results for o in r}) == 1  # re-emitted with the same event id


def test_sandbox_numbers_in_sequence_per_seller(sessions, tmp_path):
    issuer = SandboxIssuer(sessions)
    from datetime import datetime, timezone

    now = datetime(2026, 11, 22, tzinfo=timezone.utc)
    from tests.support.pdf import invoice

    def draft(seller):
        return invoice().model_copy(update={"seller_tax_id": seller, "issued_at": now})

    a = [issuer.issue(f"k{i}", draft("91440300MA5G9GK78Y"))[0] for i in range(3)]
    assert [int(n[-11:]) for n in a] == [1, 2, 3] and all(len(n) == 20 and n.startswith("26") for n in a)
    assert issuer.issue("k1", draft("91440300MA5G9GK78Y"))[0] == a[1]
    b = issuer.issue("other", draft("91440300358768292H"))[0]
    assert b not in a and int(b[-11:]) == 1


def test_issue_refused_over_monthly_limit(sessions, tmp_path):
    from fapiao.adapters.db import OrgRow

    link, ev = _accepted_and_submission(sessions)
    with sessions() as s:
        s.scalar(select(OrgRow)).monthly_limit = Decimal("1000.00")
        s.commit()
    [out] = handle_submission(sessions, SandboxIssuer(sessions), ev)
    assert out.stage == "invoices.failed" and out.event.code == "LIMIT_EXCEEDED" and not out.event.retryable


def test_submit_title_waits_for_the_merchant(sessions, tmp_path):
    from fapiao.adapters.db import QrSettingRow
    from fapiao.services.issue import approval_event, pending_orders
    from fapiao.errors import Refused
    from schemas.events import BuyerSubmitted

    link, ev = _accepted_and_submission(sessions, "WAIT-1")
    with sessions() as s:
        setting = s.scalar(select(QrSettingRow))
        setting.scan_type, setting.default_issue = "submit_title", False
        s.commit()
    issuer = SandboxIssuer(sessions)
    assert handle_submission(sessions, issuer, ev) == []  # 待开票
    assert scan_view(sessions, link.link_id).status == "awaiting_issue"
    [(order, sub)] = pending_orders(sessions)
    assert order.bill_no == "WAIT-1" and sub.buyer["title"] == "某某公司"
    approved = approval_event(sessions, ev.order_key)
    assert isinstance(approved, BuyerSubmitted) and approved.merchant_approved and approved.buyer == ev.buyer
    outs = handle_submission(sessions, issuer, approved)
    assert outs[0].stage == "invoices.issued" and pending_orders(sessions) == []
    refused = approval_event(sessions, ev.order_key)
    assert isinstance(refused, Refused) and refused.code == "NOT_AWAITING_ISSUE" and "不是待开票" in refused.message


def test_submit_title_waits_even_with_default_issue(sessions, tmp_path):
    """默认开票 builds a preset sales order (issue #15); issuing at once belongs to 扫码类型 扫码开票."""
    from fapiao.adapters.db import QrSettingRow

    link, ev = _accepted_and_submission(sessions, "WAIT-2")
    with sessions() as s:
        setting = s.scalar(select(QrSettingRow))
        setting.scan_type, setting.default_issue = "submit_title", True
        s.commit()
    assert handle_submission(sessions, SandboxIssuer(sessions), ev) == []
    assert scan_view(sessions, link.link_id).status == "awaiting_issue"
