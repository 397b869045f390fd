"""Use cases behind `fapiao orders show/list`, the admin order pages and their JSON API: find an order, list
orders by status, date, seller and kind, and tell its story (the timeline) from what the database records:
orders, submissions, invoices (blue and red), 红字确认单, deliveries, callbacks, and ``order_events`` for the two
facts recorded nowhere else (a rejection with its codes, the buyer's first scan).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta, timezone

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from fapiao.adapters.db import (
    CallbackRow,
    DeliveryRow,
    InvoiceRow,
    OrderEventRow,
    OrderRow,
    RedConfirmationRow,
    SubmissionRow,
)
from fapiao.adapters.documents import written_at
from fapiao.adapters.uow import UnitOfWork
from fapiao.domain.order_rules import KIND_NAMES
from fapiao.domain.reversal import STATES
from fapiao.services import stable_id
from schemas.events import OrderRejected

# Order states as listed and filtered (``submitted``: the buyer gave a title, nothing issued yet).
ORDER_STATES = {
    "accepted": "待扫码",
    "submitted": "开票中",
    "awaiting_issue": "待开票",
    "issued": "已开票",
    "failed": "开票失败",
    "reversed": "已红冲",
    "rejected": "已拒收",
}
STEP_LABELS = {
    "pushed": "推送",
    "accepted": "接收",
    "rejected": "拒收",
    "link": "二维码",
    "scanned": "扫码",
    "submitted": "提交抬头",
    "issued": "开具",
    "failed": "开票失败",
    "document": "版式文件",
    "mailed": "交付",
    "callback": "回推",
    "reversal": "红字确认单",
    "red_issued": "红字发票",
}


@dataclass(frozen=True)
class Step:
    what: str
    at: datetime | None
    detail: str = ""

    @property
    def label(self) -> str:
        return STEP_LABELS.get(self.what, self.what)

    def as_json(self) -> dict:
        return {
            "what": self.what,
            "label": self.label,
            "at": self.at.isoformat() if self.at else None,
            "detail": self.detail,
        }


@dataclass
class OrderSummary:
    seller_tax_id: str
    bill_no: str
    status: str
    kind: str | None
    total: str | None
    created_at: datetime
    invoice_number: str | None = None
    business_system_code: str | None = None

    @property
    def status_label(self) -> str:
        return ORDER_STATES.get(self.status, self.status)

    @property
    def key(self) -> str:
        return f"{self.seller_tax_id}:{self.bill_no}"

    def as_json(self) -> dict:
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat()
        d["status_label"] = self.status_label
        return d


@dataclass
class OrderDetail:
    summary: OrderSummary
    link: str | None
    link_expires_at: datetime | None
    invoices: list[dict] = field(default_factory=list)  # blue and red, oldest first
    confirmations: list[dict] = field(default_factory=list)
    rejections: list[dict] = field(default_factory=list)
    timeline: list[Step] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            **self.summary.as_json(),
            "link": self.link,
            "link_expires_at": self.link_expires_at.isoformat() if self.link_expires_at else None,
            "invoices": self.invoices,
            "confirmations": self.confirmations,
            "rejections": self.rejections,
            "timeline": [s.as_json() for s in self.timeline],
        }


# --- recording the facts nothing else records ------------------------------------------------------------------


def _new_event(
    s: Session, event_id: str, seller: str, bill_no: str, kind: str, detail: dict, at: datetime
) -> OrderEventRow | None:
    """The order event's row to insert, or None when the event id is recorded already (a redelivery)."""
    if s.scalar(select(OrderEventRow.id).where(OrderEventRow.event_id == event_id)) is not None:
        return None
    return OrderEventRow(
        event_id=event_id, seller_tax_id=seller[:20], bill_no=bill_no[:40], kind=kind, detail=detail, occurred_at=at
    )


def record_rejection(sessions: sessionmaker, ev: OrderRejected) -> list:
    """Keep a rejection's codes for the order's timeline (once per event id). Publishes nothing."""
    seller, _, bill_no = ev.order_key.partition(":")
    detail = {"violations": [v.model_dump() for v in ev.violations], "request_id": ev.request_id}
    with UnitOfWork(sessions) as uow:
        row = _new_event(
            uow.session, ev.event_id, seller, bill_no or (ev.bill_no or ""), "rejected", detail, ev.occurred_at
        )
        if row is not None:  # a racing worker (or a redelivery) may record it first: theirs stands
            uow.insert_once(row, point="orders.rejection-recorded")
    return []


def record_first_scan(sessions: sessionmaker, order_key: str, now: datetime | None = None) -> None:
    """The buyer's first scan of an order's link (later scans change nothing)."""
    seller, _, bill_no = order_key.partition(":")
    at = now or datetime.now(timezone.utc)
    with UnitOfWork(sessions) as uow:
        row = _new_event(uow.session, stable_id("scanned", order_key), seller, bill_no, "scanned", {}, at)
        if row is not None:  # a racing worker (or a redelivery) may record it first: theirs stands
            uow.insert_once(row, point="orders.first-scan-recorded")


# --- finding and listing -----------------------------------------------------------------------------------------


def _blue_invoices(s: Session, order_ids: list[int]) -> dict[int, InvoiceRow]:
    """Each order's latest blue invoice."""
    out: dict[int, InvoiceRow] = {}
    if order_ids:
        for inv in s.scalars(
            select(InvoiceRow)
            .where(InvoiceRow.order_id.in_(order_ids), InvoiceRow.red_of.is_(None))
            .order_by(InvoiceRow.generation)
        ):
            out[inv.order_id] = inv
    return out


def _summary(o: OrderRow, submitted: bool, inv: InvoiceRow | None) -> OrderSummary:
    status = "submitted" if o.status == "accepted" and submitted else o.status
    return OrderSummary(
        o.seller_tax_id,
        o.bill_no,
        status,
        o.order.get("invoice_kind"),
        str(o.total_amount),
        o.created_at,
        inv.number if inv is not None else None,
        o.business_system_code,
    )


def _day_start(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=timezone.utc)


def list_orders(
    sessions: sessionmaker,
    *,
    status: str | None = None,
    seller: str | None = None,
    kind: str | None = None,
    since: date | None = None,
    until: date | None = None,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[OrderSummary], int]:
    """One page of orders, newest first, and how many match. ``status`` ``rejected`` lists rejected bills (which
    never became orders); dates are UTC days, ``until`` included. Reads only."""
    page, per_page = max(1, page), max(1, min(per_page, 500))
    with sessions() as s:
        if status == "rejected":
            return _rejected_page(s, seller, since, until, page, per_page)
        q = select(OrderRow)
        if seller:
            q = q.where(OrderRow.seller_tax_id == seller)
        if kind:
            q = q.where(OrderRow.order["invoice_kind"].as_string() == kind)
        if since:
            q = q.where(OrderRow.created_at >= _day_start(since))
        if until:
            q = q.where(OrderRow.created_at < _day_start(until + timedelta(days=1)))
        has_sub = select(SubmissionRow.id).where(SubmissionRow.order_id == OrderRow.id).exists()
        if status == "submitted":
            q = q.where(OrderRow.status == "accepted", has_sub)
        elif status == "accepted":
            q = q.where(OrderRow.status == "accepted", ~has_sub)
        elif status:
            q = q.where(OrderRow.status == status)
        total = s.scalar(select(func.count()).select_from(q.subquery()))
        rows = s.scalars(
            q.order_by(OrderRow.created_at.desc(), OrderRow.id.desc()).offset((page - 1) * per_page).limit(per_page)
        ).all()
        ids = [o.id for o in rows]
        subs = set(s.scalars(select(SubmissionRow.order_id).where(SubmissionRow.order_id.in_(ids)))) if ids else set()
        invs = _blue_invoices(s, ids)
        return [_summary(o, o.id in subs, invs.get(o.id)) for o in rows], total


def _rejected_page(s: Session, seller, since, until, page, per_page) -> tuple[list[OrderSummary], int]:
    q = select(OrderEventRow).where(OrderEventRow.kind == "rejected")
    if seller:
        q = q.where(OrderEventRow.seller_tax_id == seller)
    if since:
        q = q.where(OrderEventRow.occurred_at >= _day_start(since))
    if until:
        q = q.where(OrderEventRow.occurred_at < _day_start(until + timedelta(days=1)))
    total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = s.scalars(
        q.order_by(OrderEventRow.occurred_at.desc(), OrderEventRow.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return [OrderSummary(r.seller_tax_id, r.bill_no, "rejected", None, None, r.occurred_at) for r in rows], total


def find_orders(sessions: sessionmaker, bill_no: str, seller: str | None = None, minter=None) -> list[OrderDetail]:
    """Everything known about bill ``bill_no`` (of ``seller``, or of every seller that has one): the order if it
    was accepted, its invoices, 红字确认单, rejections and timeline. Empty when nothing is known. Reads only."""
    with sessions() as s:
        q = select(OrderRow).where(OrderRow.bill_no == bill_no)
        e = select(OrderEventRow).where(OrderEventRow.bill_no == bill_no, OrderEventRow.kind == "rejected")
        if seller:
            q, e = q.where(OrderRow.seller_tax_id == seller), e.where(OrderEventRow.seller_tax_id == seller)
        orders = {o.seller_tax_id: o for o in s.scalars(q)}
        rejected: dict[str, list[OrderEventRow]] = {}
        for r in s.scalars(e.order_by(OrderEventRow.occurred_at)):
            rejected.setdefault(r.seller_tax_id, []).append(r)
        return [
            _detail(s, orders.get(sel), rejected.get(sel, []), sel, bill_no, minter)
            for sel in sorted(set(orders) | set(rejected))
        ]


def _violations(rejection: OrderEventRow) -> list[dict]:
    return (rejection.detail or {}).get("violations", [])


def _detail(
    s: Session, o: OrderRow | None, rejections: list[OrderEventRow], seller: str, bill_no: str, minter
) -> OrderDetail:
    steps = [
        Step("rejected", r.occurred_at, " ".join(f"{v['code']} {v['message']}" for v in _violations(r)))
        for r in rejections
    ]
    rej = [{"at": r.occurred_at.isoformat(), "violations": _violations(r)} for r in rejections]
    if o is None:
        summary = OrderSummary(seller, bill_no, "rejected", None, None, rejections[-1].occurred_at)
        return OrderDetail(summary, None, None, rejections=rej, timeline=steps)
    link = minter.url(o.link_id, o.link_expires_at) if minter else None
    sub = s.scalar(select(SubmissionRow).where(SubmissionRow.order_id == o.id))
    invoices = list(s.scalars(select(InvoiceRow).where(InvoiceRow.order_id == o.id).order_by(InvoiceRow.id)))
    confs = list(
        s.scalars(select(RedConfirmationRow).where(RedConfirmationRow.order_id == o.id).order_by(RedConfirmationRow.id))
    )
    blue = [i for i in invoices if i.red_of is None]
    steps += [
        Step("pushed", o.created_at, o.business_system_code),
        Step("accepted", o.created_at, f"链接有效期至 {o.link_expires_at:%Y-%m-%d %H:%M}"),
        Step("link", o.created_at, link or f"/q/… (link {o.link_id})"),
    ]
    scanned = s.scalar(
        select(OrderEventRow.occurred_at).where(
            OrderEventRow.kind == "scanned",
            OrderEventRow.seller_tax_id == o.seller_tax_id,
            OrderEventRow.bill_no == o.bill_no,
        )
    )
    if scanned:
        steps.append(Step("scanned", scanned))
    if sub:
        steps.append(
            Step("submitted", sub.submitted_at, f"{sub.buyer.get('title', '')} {sub.buyer.get('tax_id') or ''}".strip())
        )
    steps += _invoice_steps(s, invoices)
    steps += _confirmation_steps(confs)
    steps += _callback_steps(s, o)
    steps.sort(key=lambda st: st.at or datetime.max.replace(tzinfo=timezone.utc))
    summary = _summary(o, sub is not None, blue[-1] if blue else None)
    return OrderDetail(
        summary,
        link,
        o.link_expires_at,
        [_invoice_json(i) for i in invoices],
        [_confirmation_json(c) for c in confs],
        rej,
        steps,
    )


def _invoice_steps(s: Session, invoices: list[InvoiceRow]) -> list[Step]:
    steps = []
    numbers = [i.number for i in invoices if i.number]
    for i in invoices:
        if i.status == "failed":
            steps.append(Step("failed", i.created_at, i.error or ""))
        elif i.status == "issued":
            what = "red_issued" if i.red_of else "issued"
            steps.append(
                Step(
                    what, i.issued_at, f"{i.number} ¥{i.total_with_tax}" + (f"（红冲 {i.red_of}）" if i.red_of else "")
                )
            )
            if i.documents:
                steps.append(
                    Step(
                        "document",
                        written_at(i.documents) or i.issued_at,
                        f"{i.number}: {', '.join(sorted(i.documents))}",
                    )
                )
    if numbers:
        for d in s.scalars(select(DeliveryRow).where(DeliveryRow.invoice_number.in_(numbers)).order_by(DeliveryRow.id)):
            state = {"sent": "已发送", "failed": "发送失败", "sending": "发送中", "queued": "等待发送"}.get(
                d.status, d.status
            )
            steps.append(
                Step(
                    "mailed",
                    d.updated_at,
                    f"{d.invoice_number} → {d.target} {state}" + (f"：{d.error}" if d.error else ""),
                )
            )
    return steps


def _confirmation_steps(confs: list[RedConfirmationRow]) -> list[Step]:
    steps = []
    for c in confs:
        steps.append(Step("reversal", c.created_at, f"{c.confirmation_id} {c.reason} ¥{c.total_with_tax} 待确认"))
        if c.confirmed_at:
            steps.append(Step("reversal", c.confirmed_at, f"{c.confirmation_id} 已确认"))
        if c.cancelled_at:
            steps.append(Step("reversal", c.cancelled_at, f"{c.confirmation_id} 已作废"))
    return steps


def _callback_steps(s: Session, o: OrderRow) -> list[Step]:
    rows = s.scalars(
        select(CallbackRow)
        .where(
            CallbackRow.business_system_code == o.business_system_code,
            CallbackRow.payload["SaleNo"].as_string() == o.bill_no,
            or_(CallbackRow.kind == "issued", CallbackRow.payload["TaxNo"].as_string() == o.seller_tax_id),
        )
        .order_by(CallbackRow.id)
    )
    return [
        Step(
            "callback",
            c.updated_at,
            f"{c.kind} → {c.status}（{c.attempts} 次）" + (f"：{c.last_error}" if c.last_error else ""),
        )
        for c in rows
    ]


def _invoice_json(i: InvoiceRow) -> dict:
    return {
        "number": i.number,
        "color": "red" if i.red_of else "blue",
        "red_of": i.red_of,
        "generation": i.generation,
        "status": i.status,
        "total_with_tax": str(i.total_with_tax) if i.total_with_tax is not None else None,
        "reversed_with_tax": str(i.reversed_with_tax),
        "issued_at": i.issued_at.isoformat() if i.issued_at else None,
        "error": i.error,
        "documents": sorted(i.documents or {}),
        "confirmation_id": i.confirmation_id,
    }


def _confirmation_json(c: RedConfirmationRow) -> dict:
    return {
        "confirmation_id": c.confirmation_id,
        "request_id": c.request_id,
        "blue_number": c.blue_number,
        "reason": c.reason,
        "whole": c.whole,
        "lines": c.lines,
        "total_with_tax": str(c.total_with_tax),
        "status": c.status,
        "status_label": STATES[c.status],
        "red_number": c.red_number,
        "error": c.error,
        "created_at": c.created_at.isoformat(),
        "lapses_at": c.lapses_at.isoformat(),
    }


def blue_lines(sessions: sessionmaker, number: str) -> list[dict]:
    """The lines of an issued invoice, for the per-line reversal form."""
    with sessions() as s:
        inv = s.scalar(select(InvoiceRow.invoice).where(InvoiceRow.number == number))
    return (inv or {}).get("lines", [])


def kind_name(code: str | None) -> str:
    return KIND_NAMES.get(code or "", code or "")
