"""Use case: a BILL.PUSH arrived. Check every bill, persist accepted orders once, mint their QR links."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from fapiao.adapters.db import OrderRow
from fapiao.domain.links import make_token, new_link_id
from fapiao.domain.order_rules import check_bill, key_tax_id_warning, wants_h5_url
from fapiao.services import Outcome, stable_id
from fapiao.services.merchants import ContextCache
from fapiao.topics import order_key
from schemas.bill_push import Bill, BillPush
from schemas.events import Order, OrderAccepted, OrderRejected, Violation


@dataclass(frozen=True)
class LinkMinter:
    secret: bytes
    base_url: str

    def url(self, link_id: str, expires_at: datetime) -> str:
        return f"{self.base_url}/q/{make_token(self.secret, link_id, expires_at)}"


def content_hash(order: Order) -> str:
    return hashlib.sha256(order.model_dump_json().encode()).hexdigest()


def _rejected(bill: Bill, push: BillPush, index: int, violations: list[Violation]) -> Outcome:
    original = bill.model_dump(mode="json", exclude_none=True)
    seller = (bill.sellerTaxpayerId or "").strip()
    bill_no = (bill.billNo or "").strip()
    return Outcome(
        "orders.rejected",
        OrderRejected(
            event_id=stable_id("rejected", push.requestId, index, json.dumps(original, sort_keys=True)),
            order_key=order_key(seller, bill_no).decode(),
            business_system_code=bill.businessSystemCode or push.businessSystemCode,
            bill_no=bill_no or None,
            violations=violations,
            original=original,
            request_id=push.requestId,
        ),
    )


def _accepted(row: OrderRow, order: Order, minter: LinkMinter, request_id: str | None, h5: bool = False) -> Outcome:
    expires = row.link_expires_at
    link = minter.url(row.link_id, expires)
    return Outcome(
        "orders.accepted",
        OrderAccepted(
            event_id=stable_id("accepted", row.seller_tax_id, row.bill_no, row.content_hash),
            occurred_at=row.created_at,
            order_key=order_key(row.seller_tax_id, row.bill_no).decode(),
            order=order,
            link=link,
            link_expires_at=expires,
            request_id=request_id,
            h5_url=link if h5 else None,  # the QR link already opens the H5 page
        ),
    )


def _new_row(order: Order, digest: str, qr_key: str | None, validity_days: int, now: datetime) -> OrderRow:
    return OrderRow(
        seller_tax_id=order.seller_tax_id,
        bill_no=order.bill_no,
        business_system_code=order.business_system_code,
        qr_key=qr_key,
        content_hash=digest,
        order=order.model_dump(mode="json"),
        total_amount=order.total_amount,
        link_id=new_link_id(),
        link_expires_at=now + timedelta(days=validity_days),
        status="accepted",
        created_at=now,
    )


def _store_once(s: Session, order: Order, digest: str, qr_key: str | None, days: int, now: datetime) -> OrderRow:
    """Insert the order, or return the row a previous push (or a racing worker) already stored."""
    s.add(_new_row(order, digest, qr_key, days, now))
    try:
        s.commit()
    except IntegrityError:
        s.rollback()
    existing = s.scalar(
        select(OrderRow).where(OrderRow.seller_tax_id == order.seller_tax_id, OrderRow.bill_no == order.bill_no)
    )
    if existing is None:  # the conflict was not on the order identity; let the caller see it
        raise RuntimeError("order insert failed without an existing order")
    return existing


def store_orders(s: Session, wanted: dict[tuple[str, str], tuple], now: datetime) -> dict[tuple[str, str], OrderRow]:
    """Store every order not stored yet in one transaction; on a race with another worker, order by order."""
    found: dict[tuple[str, str], OrderRow] = {}
    bill_nos = sorted({bill_no for _, bill_no in wanted})
    for i in range(0, len(bill_nos), 500):
        for row in s.scalars(select(OrderRow).where(OrderRow.bill_no.in_(bill_nos[i : i + 500]))):
            if (row.seller_tax_id, row.bill_no) in wanted:
                found[(row.seller_tax_id, row.bill_no)] = row
    new = {key: _new_row(*args, now) for key, args in wanted.items() if key not in found}
    if not new:
        return found
    s.add_all(new.values())
    try:
        s.commit()
        found.update(new)
    except IntegrityError:
        s.rollback()
        for key, args in wanted.items():
            if key not in found:
                found[key] = _store_once(s, *args, now)
    return found


def ingest_pushes(
    sessions: sessionmaker,
    pushes: list[BillPush],
    minter: LinkMinter,
    *,
    line_tax_tolerance: Decimal = Decimal("0.06"),
    now: datetime | None = None,
    contexts: ContextCache | None = None,
) -> list[list[Outcome]]:
    """The outcomes of each push, in order. Orders of all pushes are stored in one transaction."""
    now = now or datetime.now(timezone.utc)
    lookup = (contexts or ContextCache(0)).get
    with sessions() as s:
        plan = []
        wanted: dict[tuple[str, str], tuple] = {}
        for push in pushes:
            items = []
            for index, bill in enumerate(push.data):
                ctx = lookup(
                    s,
                    system_code=bill.businessSystemCode or push.businessSystemCode,
                    seller_tax_id=bill.sellerTaxpayerId,
                    qr_key=bill.qrKey,
                    line_tax_tolerance=line_tax_tolerance,
                )
                result = check_bill(bill, ctx, push.businessSystemCode)
                digest = content_hash(result) if isinstance(result, Order) else None
                if digest is not None:
                    days = int(bill.termValidity) if bill.termValidity else ctx.setting.validity_days
                    wanted.setdefault((result.seller_tax_id, result.bill_no), (result, digest, ctx.setting.key, days))
                items.append((index, bill, result, digest, ctx))
            plan.append(items)
        rows = store_orders(s, wanted, now) if wanted else {}
        out = []
        for push, items in zip(pushes, plan):
            outcomes: list[Outcome] = []
            for index, bill, result, digest, ctx in items:
                if digest is None:
                    outcomes.append(_rejected(bill, push, index, result))
                    continue
                row = rows[(result.seller_tax_id, result.bill_no)]
                if row.content_hash != digest:
                    conflict = Violation(code="00565", field="billNo",
                                         message="销售单已存在,不能重复导入（内容与已导入的不同）")
                    outcomes.append(_rejected(bill, push, index, [conflict]))
                    continue
                accepted = _accepted(row, result, minter, push.requestId, wants_h5_url(bill))
                warning = key_tax_id_warning(ctx.setting.org.tax_id, result.seller_tax_id)
                if warning is not None:
                    accepted = Outcome("orders.accepted", accepted.event.model_copy(update={"warnings": [warning]}))
                outcomes.append(accepted)
            out.append(outcomes)
    return out


def ingest_push(sessions: sessionmaker, push: BillPush, minter: LinkMinter, **kw) -> list[Outcome]:
    return ingest_pushes(sessions, [push], minter, **kw)[0]
