"""Use case: the buyer submitted a title. Issue exactly one invoice for the order (a number, a stored invoice and
an ``invoices.issued`` event); nothing is drawn here: the render stage makes the documents and asks for delivery."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from fapiao.adapters.db import InvoiceRow, OrderRow, SubmissionRow
from fapiao.adapters.issuer import Issuer
from fapiao.domain.invoice import IssueRefused, build_invoice, check_monthly_limit
from fapiao.domain.merchant import ScanType
from fapiao.services import Outcome, stable_id
from fapiao.services.merchants import find_setting
from schemas.events import (
    Buyer,
    BuyerSubmitted,
    Channel,
    DeliveryRequested,
    Invoice,
    InvoiceFailed,
    InvoiceIssued,
    Order,
)


def _order_row(s: Session, order_key: str) -> OrderRow | None:
    seller, _, bill_no = order_key.partition(":")
    return s.scalar(select(OrderRow).where(OrderRow.seller_tax_id == seller, OrderRow.bill_no == bill_no))


def record_submission(s: Session, order: OrderRow, ev: BuyerSubmitted) -> None:
    """The buyer's latest title for the order (the gateway on submit, the worker on processing)."""
    sub = s.scalar(select(SubmissionRow).where(SubmissionRow.order_id == order.id))
    if sub is None:
        sub = SubmissionRow(order_id=order.id)
        s.add(sub)
    sub.submission_id = ev.submission_id
    sub.buyer = ev.buyer.model_dump(mode="json")
    sub.invoice_kind = ev.invoice_kind.value
    sub.submitted_at = ev.occurred_at
    try:
        s.commit()
    except IntegrityError:  # a racing worker recorded it first; theirs is as good as ours
        s.rollback()


def delivery_requests(invoice: Invoice, order_key: str, reason: str = "issued", nonce: str = "") -> list[Outcome]:
    out = []
    for channel, to in ((Channel.email, invoice.buyer.email), (Channel.sms, invoice.buyer.phone)):
        if not to:
            continue
        request_id = stable_id("delivery", invoice.number, channel.value, reason, nonce)
        out.append(
            Outcome(
                "delivery.requested",
                DeliveryRequested(
                    event_id=request_id,
                    order_key=order_key,
                    request_id=request_id,
                    invoice_number=invoice.number,
                    channel=channel,
                    to=to,
                    reason=reason,
                ),
            )
        )
    return out


def _issued(row: InvoiceRow, order_key: str) -> list[Outcome]:
    invoice = Invoice.model_validate(row.invoice)
    issued = InvoiceIssued(
        event_id=stable_id("issued", invoice.number),
        occurred_at=invoice.issued_at,
        order_key=order_key,
        invoice=invoice,
        documents=row.documents or {},
    )
    return [Outcome("invoices.issued", issued)]


def _failed(order_key: str, code: str, reason: str, retryable: bool) -> list[Outcome]:
    return [
        Outcome(
            "invoices.failed",
            InvoiceFailed(
                event_id=stable_id("failed", order_key, code, reason),
                order_key=order_key,
                code=code,
                reason=reason,
                retryable=retryable,
            ),
        )
    ]


def _claim(s: Session, order: OrderRow, now: datetime) -> InvoiceRow:
    """The one invoice row of this order, created in state ``issuing`` if it does not exist yet."""
    row = s.scalar(select(InvoiceRow).where(InvoiceRow.order_id == order.id))
    if row is not None:
        return row
    s.add(InvoiceRow(order_id=order.id, seller_tax_id=order.seller_tax_id, status="issuing", created_at=now))
    try:
        s.commit()
    except IntegrityError:
        s.rollback()
    return s.scalar(select(InvoiceRow).where(InvoiceRow.order_id == order.id))


def _issued_this_month(s: Session, seller_tax_id: str, now: datetime) -> Decimal:
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    total = s.scalar(
        select(func.coalesce(func.sum(InvoiceRow.total_with_tax), 0)).where(
            InvoiceRow.seller_tax_id == seller_tax_id, InvoiceRow.status == "issued", InvoiceRow.issued_at >= start
        )
    )
    return Decimal(total)


def handle_submission(sessions: sessionmaker, issuer: Issuer, ev: BuyerSubmitted, now: datetime | None = None
                      ) -> list[Outcome]:
    now = now or datetime.now(timezone.utc)
    with sessions() as s:
        order_row = _order_row(s, ev.order_key)
        if order_row is None:
            return _failed(ev.order_key, "ORDER_NOT_FOUND", "订单不存在", retryable=False)
        record_submission(s, order_row, ev)
        setting = find_setting(s, key=order_row.qr_key, seller_tax_id=order_row.seller_tax_id, system_code=None)
        waits = setting is not None and setting.scan_type == ScanType.submit_title and not setting.default_issue
        if waits and not ev.merchant_approved:
            order_row.status = "awaiting_issue"  # 待开票: the merchant issues later
            s.commit()
            return []
        return issue_order(s, issuer, order_row, now, setting)


def issue_order(s: Session, issuer: Issuer, order_row: OrderRow, now: datetime, setting) -> list[Outcome]:
    order_key = f"{order_row.seller_tax_id}:{order_row.bill_no}"
    row = _claim(s, order_row, now)
    if row.status == "issued":
        return _issued(row, order_key)
    sub = s.scalar(select(SubmissionRow).where(SubmissionRow.order_id == order_row.id))
    order = Order.model_validate(order_row.order)
    buyer = Buyer.model_validate(sub.buyer)
    draft = build_invoice(order, buyer, number="0" * 20, issued_at=now)
    try:
        limit = setting.org.monthly_limit if setting else None
        check_monthly_limit(limit, _issued_this_month(s, order_row.seller_tax_id, now), draft.total_with_tax)
        number, issued_at = issuer.issue(order_key, draft)
    except IssueRefused as exc:
        row.status, row.error = "failed", exc.reason
        order_row.status = "failed"
        s.commit()
        return _failed(order_key, exc.code, exc.reason, retryable=False)
    invoice = draft.model_copy(update={"number": number, "issued_at": issued_at})
    row.invoice = invoice.model_dump(mode="json")
    row.number, row.status, row.issued_at = number, "issued", issued_at
    row.total_with_tax, row.error = invoice.total_with_tax, None
    order_row.status = "issued"
    s.commit()
    return _issued(row, order_key)


def pending_orders(sessions: sessionmaker) -> list[tuple[OrderRow, SubmissionRow]]:
    """待开票: orders whose buyer submitted a title under 扫码提交抬头, waiting for the merchant."""
    with sessions() as s:
        rows = s.execute(select(OrderRow, SubmissionRow).join(SubmissionRow, SubmissionRow.order_id == OrderRow.id)
                         .where(OrderRow.status == "awaiting_issue").order_by(OrderRow.id)).all()
        return [tuple(r) for r in rows]


def approval_event(sessions: sessionmaker, order_key: str) -> BuyerSubmitted | str:
    """The merchant issues a waiting order: the buyer's stored submission, approved."""
    with sessions() as s:
        order = _order_row(s, order_key)
        if order is None:
            return "订单不存在"
        if order.status != "awaiting_issue":
            return f"订单状态为 {order.status}，不是待开票"
        sub = s.scalar(select(SubmissionRow).where(SubmissionRow.order_id == order.id))
        return BuyerSubmitted(event_id=stable_id("approved", order_key, sub.submission_id), order_key=order_key,
                              submission_id=sub.submission_id, buyer=Buyer.model_validate(sub.buyer),
                              invoice_kind=sub.invoice_kind, merchant_approved=True)
