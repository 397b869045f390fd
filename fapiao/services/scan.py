"""Use cases behind the buyer's H5 page: what a scanned link shows, and turning a form into buyer.submitted."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Mapping

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from fapiao.adapters.db import DeliveryRow, InvoiceRow, OrderRow, SubmissionRow
from fapiao.adapters.uow import UnitOfWork
from fapiao.domain.buyer import check_buyer
from fapiao.domain.order_rules import key_tax_id_warning
from fapiao.errors import FieldErrors, Refused
from fapiao.services import Outcome, stable_id
from fapiao.services.issue import delivery_requests, submission_row
from fapiao.topics import order_key
from schemas.events import BuyerSubmitted, DeliveryRequested, Invoice, Order


@dataclass(frozen=True)
class ScanView:
    order: Order
    order_key: str
    status: str  # accepted | submitted | awaiting_issue | issued | failed
    invoice: Invoice | None = None
    documents: dict | None = None
    error: str | None = None
    deliveries: tuple[tuple[str, str, str], ...] = ()  # (channel, target, status)
    qr_key: str | None = None
    reversal: str | None = None  # 已红冲 / 部分红冲 once red invoices reverse the issued one
    tax_id_notice: str | None = None  # V7.0.18: the QR key's tax ID is not the order's


def with_key_tax_id_check(view: ScanView, key_tax_id: str | None) -> ScanView:
    """V7.0.18: tell the buyer when the tax ID behind the QR's key differs from the order's seller tax ID. Issuing
    still proceeds with the order's tax ID (the invoice is built from the order)."""
    warning = key_tax_id_warning(key_tax_id, view.order.seller_tax_id) if key_tax_id else None
    return replace(view, tax_id_notice=warning.message if warning else None)


def prefilled_form(order: Order) -> dict[str, str]:
    """The buyer fields an order brought (a buyer-title mapping), to start the form with. What the buyer submits
    is what the invoice carries: their own entry wins over the mapping."""
    known = {"title": order.buyer_name, "tax_id": order.buyer_tax_id, "email": order.buyer_email}
    return {k: v for k, v in known.items() if v}


def scan_view(sessions: sessionmaker, link_id: str) -> ScanView | None:
    """What the buyer's page shows for the order behind a link: accepted, submitted (开票中), awaiting_issue
    (待开票), failed, or issued with the invoice, its documents, deliveries and any 红冲; ``None`` for an unknown
    link. Reads only."""
    with sessions() as s:
        row = s.scalar(select(OrderRow).where(OrderRow.link_id == link_id))
        if row is None:
            return None
        key = order_key(row.seller_tax_id, row.bill_no).decode()
        order = Order.model_validate(row.order)
        inv = s.scalar(
            select(InvoiceRow)
            .where(InvoiceRow.order_id == row.id, InvoiceRow.red_of.is_(None))
            .order_by(InvoiceRow.generation.desc())
        )  # the order's latest blue invoice
        if inv is not None and inv.generation < row.generation:
            inv = None  # 重开 asked for: the new invoice is on its way (开票中)
        if inv is not None and inv.status == "issued":
            deliveries = s.execute(
                select(DeliveryRow.channel, DeliveryRow.target, DeliveryRow.status).where(
                    DeliveryRow.invoice_number == inv.number
                )
            ).all()
            reds = s.scalars(
                select(InvoiceRow.total_with_tax).where(InvoiceRow.red_of == inv.number, InvoiceRow.status == "issued")
            ).all()
            reversal = None if not reds else "已红冲" if sum(reds) + inv.total_with_tax == 0 else "部分红冲"
            return ScanView(
                order,
                key,
                "issued",
                Invoice.model_validate(inv.invoice),
                inv.documents,
                reversal=reversal,
                deliveries=tuple(tuple(d) for d in deliveries),
                qr_key=row.qr_key,
            )
        if inv is not None and inv.status == "failed":
            return ScanView(order, key, "failed", error=inv.error, qr_key=row.qr_key)
        if row.status == "awaiting_issue":
            return ScanView(order, key, "awaiting_issue", qr_key=row.qr_key)
        submitted = s.scalar(select(SubmissionRow.id).where(SubmissionRow.order_id == row.id))
        return ScanView(order, key, "submitted" if submitted else "accepted", qr_key=row.qr_key)


def submission_event(view: ScanView, form: Mapping[str, str]) -> BuyerSubmitted | FieldErrors:
    """The buyer.submitted event for a valid form, or the errors by field. The kind is the pushed one."""
    result = check_buyer(form, view.order.invoice_kind)
    if isinstance(result, FieldErrors):
        return result
    digest = hashlib.sha256(json.dumps(result.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    submission_id = stable_id("submitted", view.order_key, digest)
    return BuyerSubmitted(
        event_id=submission_id,
        order_key=view.order_key,
        submission_id=submission_id,
        buyer=result,
        invoice_kind=view.order.invoice_kind,
    )


def mark_submitted(sessions: sessionmaker, link_id: str, ev: BuyerSubmitted) -> None:
    """Remember that the buyer submitted, so the page shows 开票中 at once (the worker records the details).
    Commits the submission; a racing writer's row stands if it got there first (theirs is as good as ours)."""
    with UnitOfWork(sessions) as uow:
        order = uow.session.scalar(select(OrderRow).where(OrderRow.link_id == link_id))
        if order is None:
            return  # the link's order is gone (archived): nothing to show 开票中 for
        uow.insert_once(submission_row(uow.session, order, ev), point="scan.submission-recorded")


def invoice_document(sessions: sessionmaker, invoice_number: str, fmt: str) -> Path | None:
    """Where a rendering of an issued invoice is, if it exists."""
    with sessions() as s:
        documents = s.scalar(select(InvoiceRow.documents).where(InvoiceRow.number == invoice_number))
    path = Path(documents[fmt]) if documents and fmt in documents else None
    return path if path and path.exists() else None


RESEND_INTERVAL = timedelta(minutes=1)
RESENDS_PER_DAY = 5


def request_resend(sessions: sessionmaker, view: ScanView, now: datetime | None = None) -> list[Outcome] | Refused:
    """重发: new delivery requests for an issued invoice, or ``Refused`` saying why not (``NOT_ISSUED``,
    ``DOCUMENTS_PENDING``, ``RESEND_TOO_SOON``: at most one a minute, ``RESEND_DAILY_LIMIT``: five a day).

    The requests are written to the delivery ledger at once (status ``queued``), so two quick taps cannot both
    pass the limit; the delivery worker sends them when the events arrive."""
    now = now or datetime.now(timezone.utc)
    if view.invoice is None:
        return Refused("NOT_ISSUED", "发票尚未开具，暂不能重发")
    if not (view.documents and view.documents.get("pdf")):  # the render stage mails it once the files exist
        return Refused("DOCUMENTS_PENDING", "发票文件生成中，生成后将自动发送")
    number = view.invoice.number
    with UnitOfWork(sessions) as uow:
        s = uow.session
        recent = s.scalars(
            select(DeliveryRow.updated_at).where(
                DeliveryRow.invoice_number == number,
                DeliveryRow.reason == "resend",
                DeliveryRow.updated_at >= now - timedelta(days=1),
            )
        ).all()
        if any(t >= now - RESEND_INTERVAL for t in recent):
            return Refused("RESEND_TOO_SOON", "操作太频繁，请一分钟后再试")
        if len({t.replace(microsecond=0) for t in recent}) >= RESENDS_PER_DAY:
            return Refused("RESEND_DAILY_LIMIT", "今日重发次数已达上限，请明天再试")
        outcomes = delivery_requests(view.invoice, view.order_key, reason="resend", nonce=now.isoformat())
        for o in outcomes:
            ev = o.event
            assert isinstance(ev, DeliveryRequested)
            s.add(
                DeliveryRow(
                    request_id=ev.request_id,
                    invoice_number=number,
                    channel=ev.channel.value,
                    target=ev.to,
                    status="queued",
                    reason="resend",
                    attempts=0,
                    updated_at=now,
                )
            )
        uow.commit("scan.resend-queued")
    return outcomes
