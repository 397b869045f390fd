"""Use case: 重开. After a blue invoice was fully reversed for a wrong title (开票有误), the merchant submits a
corrected title and a new blue invoice is issued for the same order, as the order's next generation. The
order keeps both: the first blue invoice, its red ones, and the new blue one (``invoices.generation``).

The new invoice flows like any other: a ``buyer.submitted`` (merchant-approved) that the invoice-issue worker
issues once per generation (issuer key ``{order key}#{generation}``), then render, delivery and callbacks.
"""

from __future__ import annotations

import hashlib
import json
from typing import Mapping

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from fapiao.adapters.db import InvoiceRow, OrderRow, RedConfirmationRow
from fapiao.adapters.uow import UnitOfWork
from fapiao.domain.buyer import check_buyer
from fapiao.domain.reversal import ReversalRefused, check_reissue
from fapiao.errors import FieldErrors
from fapiao.services import stable_id
from fapiao.topics import order_key
from schemas.events import BuyerSubmitted, Order


def may_reissue(sessions: sessionmaker, order_key_text: str) -> bool:
    """Whether the order may be re-issued now (its latest blue invoice fully reversed, all for 开票有误)."""
    seller, _, bill_no = order_key_text.partition(":")
    with sessions() as s:
        try:
            _reissuable(s, seller, bill_no)
        except ReversalRefused:
            return False
    return True


def _reissuable(s, seller: str, bill_no: str, lock: bool = False) -> tuple[OrderRow, InvoiceRow]:
    q = select(OrderRow).where(OrderRow.seller_tax_id == seller, OrderRow.bill_no == bill_no)
    order = s.scalar(q.with_for_update() if lock else q)
    if order is None:
        raise ReversalRefused("REISSUE_UNKNOWN_ORDER", f"销售方 {seller} 没有订单 {bill_no}", "bill_no")
    blue = s.scalar(
        select(InvoiceRow)
        .where(InvoiceRow.order_id == order.id, InvoiceRow.red_of.is_(None), InvoiceRow.status == "issued")
        .order_by(InvoiceRow.generation.desc())
    )
    if blue is None:
        raise ReversalRefused("REISSUE_NOT_ISSUED", f"订单 {bill_no} 还没有开具的发票，无需重开", "bill_no")
    reds = s.scalars(
        select(InvoiceRow.total_with_tax).where(InvoiceRow.red_of == blue.number, InvoiceRow.status == "issued")
    ).all()
    reasons = s.scalars(
        select(RedConfirmationRow.reason).where(
            RedConfirmationRow.blue_invoice_id == blue.id, RedConfirmationRow.status == "issued"
        )
    ).all()
    check_reissue(blue.number, blue.total_with_tax, reds, reasons)
    return order, blue


def reissue_event(
    sessions: sessionmaker, seller: str, bill_no: str, form: Mapping[str, str]
) -> BuyerSubmitted | FieldErrors:
    """The ``buyer.submitted`` that re-issues the order with the corrected title ``form`` (the buyer page's
    fields), or the title's ``FieldErrors`` with nothing written. Commits the order's next generation (asking again before it is issued
    gives the same event: idempotent). Raises ReversalRefused naming the rule when the order may not be re-issued."""
    with UnitOfWork(sessions) as uow:
        order, blue = _reissuable(uow.session, seller, bill_no, lock=True)
        kind = Order.model_validate(order.order).invoice_kind
        buyer = check_buyer(form, kind)
        if isinstance(buyer, FieldErrors):
            return buyer
        order.generation = blue.generation + 1  # set, not added: asking again re-issues the same generation
        uow.commit("reissue.generation-advanced")
        key = order_key(seller, bill_no).decode()
        digest = hashlib.sha256(json.dumps(buyer.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
        submission_id = stable_id("reissue", key, order.generation, digest)
        return BuyerSubmitted(
            event_id=submission_id,
            order_key=key,
            submission_id=submission_id,
            buyer=buyer,
            invoice_kind=kind,
            merchant_approved=True,
        )
