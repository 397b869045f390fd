"""Use case: the buyer submitted a title. Issue exactly one invoice for the order (a number, a stored invoice and
an ``invoices.issued`` event); nothing is drawn here: the render stage makes the documents and asks for delivery."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from fapiao.adapters.db import InvoiceRow, OrderRow, SubmissionRow, begin_write, lock_sellers
from fapiao.adapters.issuer import Issuer
from fapiao.adapters.uow import UnitOfWork
from fapiao.domain.invoice import IssueRefused, build_invoice, check_monthly_limit
from fapiao.domain.merchant import QrSettingView, ScanType
from fapiao.errors import Refused
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


def submission_row(s: Session, order: OrderRow, ev: BuyerSubmitted) -> SubmissionRow:
    """The order's submission row (new, or the one there) holding the buyer's latest title; not committed."""
    sub = s.scalar(select(SubmissionRow).where(SubmissionRow.order_id == order.id))
    if sub is None:
        sub = SubmissionRow(order_id=order.id)
    sub.submission_id = ev.submission_id
    sub.buyer = ev.buyer.model_dump(mode="json")
    sub.invoice_kind = ev.invoice_kind.value
    sub.submitted_at = ev.occurred_at
    return sub


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


def _issued(row: InvoiceRow, order_key: str, invoice: Invoice | None = None) -> Outcome:
    invoice = invoice or Invoice.model_validate(row.invoice)
    return Outcome(
        "invoices.issued",
        InvoiceIssued(
            event_id=stable_id("issued", invoice.number),
            occurred_at=invoice.issued_at,
            order_key=order_key,
            invoice=invoice,
            documents=row.documents or {},
        ),
    )


def _failed(order_key: str, code: str, reason: str, retryable: bool) -> Outcome:
    return Outcome(
        "invoices.failed",
        InvoiceFailed(
            event_id=stable_id("failed", order_key, code, reason),
            order_key=order_key,
            code=code,
            reason=reason,
            retryable=retryable,
        ),
    )


def _orders(s: Session, order_keys: set[str]) -> dict[str, OrderRow]:
    wanted = {tuple(k.partition(":")[::2]) for k in order_keys}
    bill_nos = sorted({bill_no for _, bill_no in wanted})
    found = {}
    for i in range(0, len(bill_nos), 500):
        for row in s.scalars(select(OrderRow).where(OrderRow.bill_no.in_(bill_nos[i : i + 500]))):
            if (row.seller_tax_id, row.bill_no) in wanted:
                found[f"{row.seller_tax_id}:{row.bill_no}"] = row
    return found


def _by_order(s: Session, model, order_ids: list[int]) -> dict:
    rows: dict[int, Any] = {}
    for i in range(0, len(order_ids), 500):
        rows.update((r.order_id, r) for r in s.scalars(select(model).where(model.order_id.in_(order_ids[i : i + 500]))))
    return rows


def _issued_this_month(s: Session, sellers: set[str], now: datetime) -> dict[str, Decimal]:
    """Each seller's issued total this month (read under the sellers' locks, so it stays true until commit)."""
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    totals = {seller: Decimal("0.00") for seller in sellers}
    if sellers:
        rows = s.execute(
            select(InvoiceRow.seller_tax_id, func.coalesce(func.sum(InvoiceRow.total_with_tax), 0))
            .where(
                InvoiceRow.seller_tax_id.in_(sorted(sellers)),
                InvoiceRow.status == "issued",
                InvoiceRow.issued_at >= start,
            )
            .group_by(InvoiceRow.seller_tax_id)
        )
        totals.update((seller, Decimal(total or 0)) for seller, total in rows)
    return totals


def _number(s: Session, issuer: Issuer, items: list[tuple[str, Invoice]]) -> list[tuple[str, datetime] | IssueRefused]:
    """(number, issue time) or IssueRefused for each (order key, draft); Transient propagates."""
    issue_within = getattr(issuer, "issue_within", None)
    if issue_within is not None:
        return issue_within(s, items)
    answers: list[tuple[str, datetime] | IssueRefused] = []
    for key, draft in items:  # an external platform: one call per invoice, each idempotent by the order key
        try:
            answers.append(issuer.issue(key, draft))
        except IssueRefused as exc:
            answers.append(exc)
    return answers


def issue_submissions(
    sessions: sessionmaker, issuer: Issuer, events: list[BuyerSubmitted], now: datetime | None = None
) -> list[list[Outcome]]:
    """Issue what a batch of submissions asks for, in ONE transaction that holds the sellers' locks (SQLite: the
    write lock; PostgreSQL: each seller's ``issue_locks`` row): record each buyer's title, check each seller's
    monthly quota (授信额度) against what is issued this month, take the numbers, record the invoices (issued or
    refused) and the orders' states, commit. Returns each event's outcomes, in order: ``invoices.issued``,
    ``invoices.failed``, or nothing (扫码提交抬头 without 默认开票: the order waits for the merchant).

    Idempotent: an order already issued re-emits its ``invoices.issued`` (same event id) and takes no number; a
    number exists exactly when its invoice row does (gap-free per seller). Raises Transient (or the database's
    OperationalError) with nothing committed: retry the batch.

    An external issuer (no ``issue_within``) is called while the seller is locked, so its batch is issued one
    submission per transaction: a slow platform never holds the lock (on SQLite: every writer) for a whole batch."""
    now = now or datetime.now(timezone.utc)
    if len(events) > 1 and getattr(issuer, "issue_within", None) is None:
        return [issue_submissions(sessions, issuer, [ev], now)[0] for ev in events]
    with UnitOfWork(sessions) as uow:
        s = uow.session
        begin_write(s)
        orders = _orders(s, {ev.order_key for ev in events})
        lock_sellers(s, {o.seller_tax_id for o in orders.values()})
        ids = [o.id for o in orders.values()]
        invoices, subs = _current_blue(s, orders.values()), _by_order(s, SubmissionRow, ids)
        settings: dict[tuple, QrSettingView | None] = {}
        results: dict[str, Outcome] = {}  # order key -> its outcome
        to_issue: dict[str, tuple[OrderRow, Invoice, Decimal | None]] = {}
        plan: list[str | None] = []  # per event: the order key whose outcome it gets, or None (nothing)
        for ev in events:
            key, order = ev.order_key, orders.get(ev.order_key)
            if order is None:
                results[key] = _failed(key, "ORDER_NOT_FOUND", "订单不存在", retryable=False)
                plan.append(key)
                continue
            row = invoices.get(order.id)
            if key in to_issue:
                plan.append(key)
                continue
            if row is not None and row.status == "issued":
                results[key] = _issued(row, key)
                plan.append(key)
                continue
            _record(s, subs, order, ev)
            skey = (order.qr_key, order.seller_tax_id)
            if skey not in settings:
                settings[skey] = find_setting(s, key=order.qr_key, seller_tax_id=order.seller_tax_id, system_code=None)
            setting = settings[skey]
            # 扫码提交抬头 waits for the merchant; 默认开票 is the preset sales order (fapiao.domain.preset), not a
            # way round that wait (issue #15).
            if setting is not None and setting.scan_type == ScanType.submit_title and not ev.merchant_approved:
                order.status = "awaiting_issue"  # 待开票: the merchant issues later
                plan.append(None)
                continue
            draft = build_invoice(Order.model_validate(order.order), ev.buyer, number="0" * 20, issued_at=now)
            to_issue[key] = (order, draft, setting.org.monthly_limit if setting else None)
            plan.append(key)

        totals = _issued_this_month(s, {o.seller_tax_id for o, _, limit in to_issue.values() if limit is not None}, now)
        refused: dict[str, IssueRefused] = {}
        pending = list(to_issue)
        while pending:  # again only when the issuer refused some, which leaves room under the quota
            numbering, over = [], {}
            for key in pending:
                order, draft, limit = to_issue[key]
                try:
                    if limit is not None:
                        check_monthly_limit(limit, totals[order.seller_tax_id], draft.total_with_tax)
                        totals[order.seller_tax_id] += draft.total_with_tax
                    numbering.append((key, draft))
                except IssueRefused as exc:
                    over[key] = exc
            released = False
            keyed = [(_issue_key(key, to_issue[key][0]), draft) for key, draft in numbering]
            for (key, draft), answer in zip(numbering, _number(s, issuer, keyed)):
                order = to_issue[key][0]
                if isinstance(answer, IssueRefused):
                    refused[key] = answer
                    if to_issue[key][2] is not None:
                        totals[order.seller_tax_id] -= draft.total_with_tax
                        released = True
                    continue
                number, issued_at = answer
                invoice = draft.model_copy(update={"number": number, "issued_at": issued_at})
                row = _invoice_row(s, invoices, order, now)
                row.invoice = invoice.model_dump(mode="json")
                row.number, row.status, row.issued_at = number, "issued", issued_at
                row.total_with_tax, row.error = invoice.total_with_tax, None
                order.status = "issued"
                results[key] = _issued(row, key, invoice)
            pending = list(over) if released and numbering else []
            if not pending:
                refused.update(over)
        for key, refusal in refused.items():
            order = to_issue[key][0]
            row = _invoice_row(s, invoices, order, now)
            row.status, row.error = "failed", refusal.reason
            order.status = "failed"
            results[key] = _failed(key, refusal.code, refusal.reason, retryable=False)
        uow.commit("issue.invoices-recorded")
    return [[results[key]] if key is not None else [] for key in plan]


def _record(s: Session, subs: dict[int, SubmissionRow], order: OrderRow, ev: BuyerSubmitted) -> None:
    sub = subs.get(order.id)
    if sub is None:
        sub = subs[order.id] = SubmissionRow(order_id=order.id)
        s.add(sub)
    sub.submission_id = ev.submission_id
    sub.buyer = ev.buyer.model_dump(mode="json")
    sub.invoice_kind = ev.invoice_kind.value
    sub.submitted_at = ev.occurred_at


def _current_blue(s: Session, orders) -> dict[int, InvoiceRow]:
    """Each order's blue invoice of its current generation (a 重开 after a full 红冲 is generation 2; red
    invoices and reversed generations are not the order's invoice to issue)."""
    generation = {o.id: o.generation for o in orders}
    ids, rows = sorted(generation), {}
    for i in range(0, len(ids), 500):
        for r in s.scalars(
            select(InvoiceRow).where(InvoiceRow.order_id.in_(ids[i : i + 500]), InvoiceRow.red_of.is_(None))
        ):
            if r.generation == generation[r.order_id]:
                rows[r.order_id] = r
    return rows


def _issue_key(order_key: str, order: OrderRow) -> str:
    """The issuer's idempotency key: the order key, and for a 重开 its generation too (a new number)."""
    return order_key if order.generation == 1 else f"{order_key}#{order.generation}"


def _invoice_row(s: Session, invoices: dict[int, InvoiceRow], order: OrderRow, now: datetime) -> InvoiceRow:
    row = invoices.get(order.id)
    if row is None:
        row = invoices[order.id] = InvoiceRow(
            order_id=order.id, seller_tax_id=order.seller_tax_id, created_at=now, generation=order.generation
        )
        s.add(row)
    return row


def handle_submission(
    sessions: sessionmaker, issuer: Issuer, ev: BuyerSubmitted, now: datetime | None = None
) -> list[Outcome]:
    """One submission: ``issue_submissions`` with a batch of one (what the worker falls back to, event by event,
    when a batch fails as a whole). Commits, raises and is idempotent as ``issue_submissions``."""
    return issue_submissions(sessions, issuer, [ev], now)[0]


def pending_orders(sessions: sessionmaker) -> list[tuple[OrderRow, SubmissionRow]]:
    """待开票: orders whose buyer submitted a title under 扫码提交抬头, waiting for the merchant."""
    with sessions() as s:
        rows = s.execute(
            select(OrderRow, SubmissionRow)
            .join(SubmissionRow, SubmissionRow.order_id == OrderRow.id)
            .where(OrderRow.status == "awaiting_issue")
            .order_by(OrderRow.id)
        ).all()
        return [tuple(r) for r in rows]


def approval_event(sessions: sessionmaker, order_key: str) -> BuyerSubmitted | Refused:
    """The merchant issues a waiting order: the buyer's stored submission, approved (a ``buyer.submitted`` to
    publish, with a stable event id: asking twice gives the same event). Writes nothing; a refusal comes back as
    ``Refused`` (``ORDER_NOT_FOUND``, or ``NOT_AWAITING_ISSUE``: not 待开票)."""
    with sessions() as s:
        order = _order_row(s, order_key)
        if order is None:
            return Refused("ORDER_NOT_FOUND", "订单不存在", "order_key")
        sub = s.scalar(select(SubmissionRow).where(SubmissionRow.order_id == order.id))
        if order.status != "awaiting_issue" or sub is None:
            return Refused("NOT_AWAITING_ISSUE", f"订单状态为 {order.status}，不是待开票", "order_key")
        return BuyerSubmitted(
            event_id=stable_id("approved", order_key, sub.submission_id),
            order_key=order_key,
            submission_id=sub.submission_id,
            buyer=Buyer.model_validate(sub.buyer),
            invoice_kind=sub.invoice_kind,
            merchant_approved=True,
        )
