"""Use case: a BILL.PUSH arrived. Check every bill, persist accepted orders once, mint their QR links."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session, sessionmaker

from fapiao.adapters.db import OrderRow
from fapiao.adapters.uow import UnitOfWork
from fapiao.domain.links import make_token, new_link_id
from fapiao.domain.intake_limits import IntakeLimits, check_limits
from fapiao.domain.order_rules import check_bill, key_tax_id_warning, org_binding_violation, wants_h5_url
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


DEFAULT_LIMITS = IntakeLimits()
ORIGINAL_MAX_CHARS = 200
ORIGINAL_MAX_LINES = 5


def _original(bill: Bill, whole: bool) -> dict[str, Any]:
    """The bill as pushed, for the rejection. A bill refused for its size is cut down (long texts shortened, only
    its first lines kept, ``billDetailCount`` added) so the rejection itself stays small enough to publish."""
    original = bill.model_dump(mode="json", exclude_none=True)
    if whole:
        return original
    cut = {k: v[:ORIGINAL_MAX_CHARS] if isinstance(v, str) else v for k, v in original.items() if k != "billDetail"}
    lines = original.get("billDetail") or []
    cut["billDetail"] = [
        {k: v[:ORIGINAL_MAX_CHARS] if isinstance(v, str) else v for k, v in line.items()}
        for line in lines[:ORIGINAL_MAX_LINES]
    ]
    cut["billDetailCount"] = len(lines)
    return cut


def _rejected(bill: Bill, push: BillPush, index: int, violations: list[Violation], whole: bool = True) -> Outcome:
    original = _original(bill, whole)
    seller = (bill.sellerTaxpayerId or "").strip()[:20]
    bill_no = (bill.billNo or "").strip()[:40]
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


class StoredOrder(NamedTuple):
    """What intake needs of a stored order (read with SQLAlchemy Core: no ORM objects on the hot path)."""

    seller_tax_id: str
    bill_no: str
    content_hash: str
    link_id: str
    link_expires_at: datetime
    created_at: datetime


_INSERT = insert(cast(Table, OrderRow.__table__))  # Core: one executemany, no ORM bulk bookkeeping
_STORED = (
    OrderRow.seller_tax_id,
    OrderRow.bill_no,
    OrderRow.content_hash,
    OrderRow.link_id,
    OrderRow.link_expires_at,
    OrderRow.created_at,
)


def _accepted(
    row: StoredOrder,
    order: Order,
    minter: LinkMinter,
    request_id: str | None,
    warnings: list[Violation],
    h5: bool = False,
) -> Outcome:
    expires = row.link_expires_at
    link = minter.url(row.link_id, expires)
    # Every part is already valid (the order passed the rules as a validated Order): build without validating again.
    return Outcome(
        "orders.accepted",
        OrderAccepted.model_construct(
            event_id=stable_id("accepted", row.seller_tax_id, row.bill_no, row.content_hash),
            schema_version=1,
            occurred_at=row.created_at,
            order_key=order_key(row.seller_tax_id, row.bill_no).decode(),
            order=order,
            link=link,
            h5_url=link if h5 else None,  # the QR link already opens the H5 page
            link_expires_at=expires,
            request_id=request_id,
            warnings=warnings,
        ),
    )


def _new_row(order: Order, digest: str, qr_key: str | None, validity_days: int, now: datetime) -> dict[str, Any]:
    return {
        "seller_tax_id": order.seller_tax_id,
        "bill_no": order.bill_no,
        "business_system_code": order.business_system_code,
        "qr_key": qr_key,
        "content_hash": digest,
        "order": order.model_dump(mode="json"),
        "total_amount": order.total_amount,
        "link_id": new_link_id(),
        "link_expires_at": now + timedelta(days=validity_days),
        "status": "accepted",
        "created_at": now,
    }


def _stored(row: dict[str, Any]) -> StoredOrder:
    return StoredOrder(*(row[c.key] for c in _STORED))


def _find(s: Session, keys) -> dict[tuple[str, str], StoredOrder]:
    found: dict[tuple[str, str], StoredOrder] = {}
    bill_nos = sorted({bill_no for _, bill_no in keys})
    for i in range(0, len(bill_nos), 500):
        for row in s.execute(select(*_STORED).where(OrderRow.bill_no.in_(bill_nos[i : i + 500]))):
            if (row.seller_tax_id, row.bill_no) in keys:
                found[(row.seller_tax_id, row.bill_no)] = StoredOrder(*row)
    return found


def store_orders(
    uow: UnitOfWork, wanted: dict[tuple[str, str], tuple[Order, str, str | None, int]], now: datetime
) -> dict[tuple[str, str], StoredOrder]:
    """Store every order not stored yet in one transaction (one multi-row insert); on a race with another
    worker, order by order. ``wanted`` maps (seller tax ID, bill number) to (order, digest, qr key, validity
    days). Idempotent: an order stored before is returned as stored, never written again.

    New orders are the common case, so the batch is inserted first and looked up only when the unique
    constraint refuses it (a redelivered push, a racing worker): the lookup cost ~30 µs an order in the small
    batches of a paced intake. Intake's commit points are here, shared by its two front doors (``ingest_pushes``
    and system_scan's): the batch (ingest.orders-stored), the ones not stored yet after a refusal
    (ingest.new-orders-stored), and after a second refusal each order alone (ingest.order-stored). Nothing new to
    write commits nothing; the caller's unit of work ends the read."""
    rows = {key: _new_row(*args, now) for key, args in wanted.items()}
    if uow.insert_rows(_INSERT, list(rows.values()), point="ingest.orders-stored"):
        return {key: _stored(row) for key, row in rows.items()}
    found = _find(uow.session, wanted.keys())  # nothing of the batch was written
    new = {key: row for key, row in rows.items() if key not in found}
    if not new:
        return found
    if uow.insert_rows(_INSERT, list(new.values()), point="ingest.new-orders-stored"):
        found.update({key: _stored(row) for key, row in new.items()})
        return found
    for key, row in new.items():  # a racing worker stored some of them meanwhile
        if uow.insert_rows(_INSERT, [row], point="ingest.order-stored"):
            found[key] = _stored(row)
            continue
        existing = _find(uow.session, {key}).get(key)
        if existing is None:  # the conflict was not on the order identity; let the caller see it
            raise RuntimeError("order insert failed without an existing order")
        found[key] = existing
    return found


@dataclass
class _Checked:
    """One bill of a push after the limits and the rules: either ``order`` (with its digest) or ``violations``."""

    index: int
    bill: Bill
    order: Order | None = None
    digest: str = ""
    violations: list[Violation] = field(default_factory=list)
    whole: bool = True
    warnings: list[Violation] = field(default_factory=list)
    qr_key: str | None = None
    days: int = 0


def _bill_bytes(push: BillPush, bill: Bill, limits: IntakeLimits) -> int:
    if push.raw_bytes and push.raw_bytes <= limits.max_bill_bytes:
        return push.raw_bytes  # the whole message is under the limit, so each of its bills is
    return len(bill.model_dump_json(exclude_none=True).encode())


def _check(
    s: Session, push: BillPush, index: int, bill: Bill, lookup, limits: IntakeLimits, line_tax_tolerance: Decimal
) -> _Checked:
    over = check_limits(bill, _bill_bytes(push, bill, limits), limits)
    if over:
        return _Checked(index, bill, violations=over, whole=False)
    system_code = bill.businessSystemCode or push.businessSystemCode
    ctx = lookup(
        s,
        system_code=system_code,
        seller_tax_id=bill.sellerTaxpayerId,
        qr_key=bill.qrKey,
        line_tax_tolerance=line_tax_tolerance,
    )
    result = check_bill(bill, ctx, push.businessSystemCode)
    unbound = org_binding_violation(ctx, bill.sellerTaxpayerId)
    if unbound is not None:
        return _Checked(index, bill, violations=[unbound] + (result if isinstance(result, list) else []))
    if isinstance(result, list):
        return _Checked(index, bill, violations=result)
    warning = key_tax_id_warning(ctx.setting.org.tax_id, result.seller_tax_id)
    days = int(bill.termValidity) if bill.termValidity else ctx.setting.validity_days
    return _Checked(
        index,
        bill,
        order=result,
        digest=content_hash(result),
        warnings=[warning] if warning is not None else [],
        qr_key=ctx.setting.key,
        days=days,
    )


def _answer(push: BillPush, c: _Checked, rows: dict[tuple[str, str], StoredOrder], minter: LinkMinter) -> Outcome:
    if c.order is None:
        return _rejected(c.bill, push, c.index, c.violations, c.whole)
    row = rows[(c.order.seller_tax_id, c.order.bill_no)]
    if row.content_hash != c.digest:
        conflict = Violation(code="00565", field="billNo", message="销售单已存在,不能重复导入（内容与已导入的不同）")
        return _rejected(c.bill, push, c.index, [conflict])
    return _accepted(row, c.order, minter, push.requestId, c.warnings, wants_h5_url(c.bill))


def ingest_pushes(
    sessions: sessionmaker,
    pushes: list[BillPush],
    minter: LinkMinter,
    *,
    line_tax_tolerance: Decimal = Decimal("0.06"),
    now: datetime | None = None,
    contexts: ContextCache | None = None,
    limits: IntakeLimits = DEFAULT_LIMITS,
) -> list[list[Outcome]]:
    """The outcomes of each push, in order: ``orders.accepted`` (with the QR link) or ``orders.rejected`` (every
    violated rule) per bill. A bill over a size limit is refused before any rule runs. Orders of all pushes are
    stored in one transaction. Idempotent: a push processed again answers the same, storing nothing twice.
    Database errors propagate (the runtime retries ``OperationalError`` as transient)."""
    now = now or datetime.now(timezone.utc)
    lookup = (contexts or ContextCache(0)).get
    with UnitOfWork(sessions) as uow:
        plan = [
            [_check(uow.session, push, i, bill, lookup, limits, line_tax_tolerance) for i, bill in enumerate(push.data)]
            for push in pushes
        ]
        wanted: dict[tuple[str, str], tuple[Order, str, str | None, int]] = {}
        for c in (c for checked in plan for c in checked):
            if c.order is not None:
                wanted.setdefault((c.order.seller_tax_id, c.order.bill_no), (c.order, c.digest, c.qr_key, c.days))
        rows = store_orders(uow, wanted, now) if wanted else {}
    return [[_answer(push, c, rows, minter) for c in checked] for push, checked in zip(pushes, plan)]


def ingest_push(sessions: sessionmaker, push: BillPush, minter: LinkMinter, **kw) -> list[Outcome]:
    """One push: ``ingest_pushes`` with a batch of one (what the worker falls back to when a batch fails as a
    whole). Commits, raises and is idempotent as ``ingest_pushes``."""
    return ingest_pushes(sessions, [push], minter, **kw)[0]
