"""Use cases of 红冲: make a 红字确认单 for a blue invoice (whole or per line), confirm or withdraw it, let
unconfirmed ones lapse after 72 h, and issue the red invoice of a confirmed one exactly once.

The sum reversed never exceeds the blue invoice: a request locks the blue invoice row (``FOR UPDATE`` on
PostgreSQL) and moves its ``reversed_with_tax`` only from the value it read (a compare-and-set, which also
serialises SQLite writers), so two concurrent partial reversals cannot both take the last part. A request id is
done once per seller: asking again returns the first request's confirmation and events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import cast

from sqlalchemy import CursorResult, Update, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from fapiao.adapters.db import InvoiceRow, OrderRow, RedConfirmationRow
from fapiao.adapters.issuer import Issuer
from fapiao.adapters.uow import UnitOfWork
from fapiao.domain.invoice import IssueRefused
from fapiao.domain.reversal import (
    OPEN_STATES,
    LineRequest,
    ReversalRefused,
    Taken,
    check_reason,
    has_lapsed,
    lapses_at,
    plan,
    red_invoice,
    totals,
)
from fapiao.errors import Transient
from fapiao.services import Outcome, stable_id
from fapiao.topics import order_key
from schemas.events import BuyerType, Invoice, InvoiceFailed, InvoiceIssued
from schemas.reversals import ReversalCancelled, ReversalConfirmed, ReversalLine, ReversalRequested

ZERO = Decimal("0")
REPUBLISH_AFTER = timedelta(minutes=2)  # a confirmed one with no red invoice by then: its event is sent again


@dataclass(frozen=True)
class ReversalAsk:
    """A merchant's reversal request, as parsed by the CLI, the admin page or the JSON API."""

    seller_tax_id: str
    invoice_number: str
    reason: str
    request_id: str
    lines: list[LineRequest] | None = None  # None: the whole invoice (everything not reversed yet)
    requested_by: str = "cli"
    confirmed: bool = False  # the buyer already confirmed (on the tax platform): 已确认 at once


@dataclass(frozen=True)
class ReversalResult:
    confirmation: RedConfirmationRow
    outcomes: list[Outcome]
    repeated: bool = False  # the request id was seen before: nothing new was written


def _order_key(s: Session, order_id: int) -> str:
    o = s.get_one(OrderRow, order_id)
    return order_key(o.seller_tax_id, o.bill_no).decode()


def _moved(s: Session, stmt: Update) -> int:
    """Run a conditional UPDATE; how many rows it changed (0: someone else changed them first)."""
    return cast(CursorResult, s.execute(stmt)).rowcount


def _requested(conf: RedConfirmationRow, key: str) -> Outcome:
    lines = [
        ReversalLine(line_no=t.line_no, quantity=t.quantity, amount=t.amount, tax_amount=t.tax)
        for t in map(Taken.from_json, conf.lines)
    ]
    return Outcome(
        "reversals.requested",
        ReversalRequested(
            event_id=stable_id("reversal-requested", conf.confirmation_id),
            occurred_at=conf.created_at,
            order_key=key,
            confirmation_id=conf.confirmation_id,
            request_id=conf.request_id,
            blue_number=conf.blue_number,
            reason=conf.reason,
            whole=conf.whole,
            lines=lines,
            total_amount=conf.total_amount,
            total_tax=conf.total_tax,
            total_with_tax=conf.total_with_tax,
            status="confirmed" if conf.confirmed_at == conf.created_at else "pending",
            lapses_at=conf.lapses_at,
            requested_by=conf.requested_by,
        ),
    )


def _confirmed(conf: RedConfirmationRow, key: str) -> Outcome:
    return Outcome(
        "reversals.confirmed",
        ReversalConfirmed(
            event_id=stable_id("reversal-confirmed", conf.confirmation_id),
            occurred_at=conf.confirmed_at,
            order_key=key,
            confirmation_id=conf.confirmation_id,
            blue_number=conf.blue_number,
        ),
    )


def _cancelled(conf: RedConfirmationRow, key: str, cause: str) -> Outcome:
    return Outcome(
        "reversals.cancelled",
        ReversalCancelled(
            event_id=stable_id("reversal-cancelled", conf.confirmation_id),
            occurred_at=conf.cancelled_at,
            order_key=key,
            confirmation_id=conf.confirmation_id,
            blue_number=conf.blue_number,
            cause=cause,
        ),
    )


def _events_of(s: Session, conf: RedConfirmationRow) -> list[Outcome]:
    key = _order_key(s, conf.order_id)
    out = [_requested(conf, key)]
    if conf.confirmed_at is not None:
        out.append(_confirmed(conf, key))
    return out


def _existing(s: Session, seller: str, request_id: str) -> RedConfirmationRow | None:
    return s.scalar(
        select(RedConfirmationRow).where(
            RedConfirmationRow.seller_tax_id == seller, RedConfirmationRow.request_id == request_id
        )
    )


def _blue(s: Session, ask: ReversalAsk) -> InvoiceRow:
    row = s.scalar(select(InvoiceRow).where(InvoiceRow.number == ask.invoice_number).with_for_update())
    if row is None:
        raise ReversalRefused("RED_UNKNOWN_INVOICE", f"发票 {ask.invoice_number} 不存在", "invoice")
    if row.seller_tax_id != ask.seller_tax_id:
        raise ReversalRefused(
            "RED_FOREIGN_SELLER",
            f"发票 {ask.invoice_number} 不是销售方 {ask.seller_tax_id} 开具的，不能红冲",
            "invoice",
        )
    if row.red_of:
        raise ReversalRefused("RED_NOT_BLUE", f"{ask.invoice_number} 是红字发票，不能再红冲", "invoice")
    if row.status != "issued":
        raise ReversalRefused("RED_NOT_ISSUED", f"发票 {ask.invoice_number} 尚未开具成功，不能红冲", "invoice")
    return row


def _taken_before(s: Session, blue_id: int) -> list[Taken]:
    rows = s.scalars(
        select(RedConfirmationRow.lines).where(
            RedConfirmationRow.blue_invoice_id == blue_id, RedConfirmationRow.status.in_(OPEN_STATES)
        )
    )
    return [Taken.from_json(d) for lines in rows for d in lines]


def _needs_no_confirmation(blue: Invoice) -> bool:
    """个人 buyers have nothing to confirm with (no tax account): their 确认单 is 已确认 when made."""
    return blue.buyer.buyer_type == BuyerType.person


def _try_request(s: Session, ask: ReversalAsk, now: datetime) -> RedConfirmationRow:
    """The confirmation for ``ask``, added with the blue invoice's reversed sum moved (not committed yet);
    raises _Conflict when another request moved that sum first."""
    blue_row = _blue(s, ask)
    blue = Invoice.model_validate(blue_row.invoice)
    taken = plan(blue, ask.reason, ask.lines, _taken_before(s, blue_row.id))
    amount, tax, with_tax = totals(taken)
    before = blue_row.reversed_with_tax
    moved = _moved(
        s,
        update(InvoiceRow)
        .where(InvoiceRow.id == blue_row.id, InvoiceRow.reversed_with_tax == before)
        .values(reversed_with_tax=before + with_tax),
    )
    if moved != 1:
        raise _Conflict()
    confirmed = ask.confirmed or _needs_no_confirmation(blue)
    conf = RedConfirmationRow(
        confirmation_id=stable_id("red-confirmation", ask.seller_tax_id, ask.request_id),
        request_id=ask.request_id,
        seller_tax_id=ask.seller_tax_id,
        order_id=blue_row.order_id,
        blue_invoice_id=blue_row.id,
        blue_number=blue_row.number,
        reason=ask.reason,
        whole=ask.lines is None,
        lines=[t.as_json() for t in taken],
        total_amount=amount,
        total_tax=tax,
        total_with_tax=with_tax,
        status="confirmed" if confirmed else "pending",
        requested_by=ask.requested_by,
        created_at=now,
        lapses_at=lapses_at(now),
        confirmed_at=now if confirmed else None,
    )
    s.add(conf)
    return conf


class _Conflict(Exception):
    """Another request moved the blue invoice's reversed sum between our read and our write: read again."""


def request_reversal(sessions: sessionmaker, ask: ReversalAsk, now: datetime | None = None) -> ReversalResult:
    """Make a 红字确认单. Commits the confirmation and the blue invoice's new reversed sum together; returns
    ``reversals.requested`` (and ``reversals.confirmed`` when no confirmation is needed) to publish.
    Idempotent per (seller, request id). Raises ReversalRefused naming the rule, with nothing written;
    Transient when concurrent requests kept conflicting."""
    now = now or datetime.now(timezone.utc)
    check_reason(ask.reason)
    if not ask.request_id or len(ask.request_id) > 100:
        raise ReversalRefused("RED_REQUEST_ID", "请求编号必须为 1 到 100 个字符", "request_id")
    for _ in range(8):
        with UnitOfWork(sessions) as uow:
            s = uow.session
            done = _existing(s, ask.seller_tax_id, ask.request_id)
            if done is not None:
                return ReversalResult(done, _events_of(s, done), repeated=True)
            try:
                conf = _try_request(s, ask, now)
                uow.commit("reversal.confirmation-stored")
            except (_Conflict, OperationalError):
                continue  # a concurrent request won the blue invoice: read what is left again (rolled back)
            except IntegrityError:
                continue  # the same request id, made concurrently: theirs is the one (rolled back)
            return ReversalResult(conf, _events_of(s, conf))
    raise Transient("红冲请求并发冲突过多，请重试")


def _confirmation(s: Session, seller: str, confirmation_id: str) -> RedConfirmationRow:
    conf = s.scalar(
        select(RedConfirmationRow).where(RedConfirmationRow.confirmation_id == confirmation_id).with_for_update()
    )
    if conf is None or conf.seller_tax_id != seller:
        raise ReversalRefused(
            "RED_UNKNOWN_CONFIRMATION", f"销售方 {seller} 没有红字确认单 {confirmation_id}", "confirmation_id"
        )
    return conf


def confirm_reversal(
    sessions: sessionmaker, seller: str, confirmation_id: str, now: datetime | None = None
) -> list[Outcome]:
    """待确认 → 已确认 (the buyer's confirmation, recorded by the merchant). Returns ``reversals.confirmed``;
    confirming again returns it again. Raises ReversalRefused when it lapsed or was voided."""
    now = now or datetime.now(timezone.utc)
    with UnitOfWork(sessions) as uow:
        s = uow.session
        conf = _confirmation(s, seller, confirmation_id)
        if conf.status in ("confirmed", "issued"):
            return [_confirmed(conf, _order_key(s, conf.order_id))]
        if conf.status == "cancelled" or has_lapsed(conf.status, conf.lapses_at, now):
            raise ReversalRefused(
                "RED_LAPSED" if conf.status == "pending" else "RED_CANCELLED",
                f"红字确认单 {confirmation_id} 已作废（超过72小时未确认或已撤销），请重新申请",
                "confirmation_id",
            )
        moved = _moved(
            s,
            update(RedConfirmationRow)
            .where(RedConfirmationRow.id == conf.id, RedConfirmationRow.status == "pending")
            .values(status="confirmed", confirmed_at=now),
        )
        uow.commit("reversal.confirmed")
        if moved != 1:
            return confirm_reversal(sessions, seller, confirmation_id, now)
        s.refresh(conf)
        return [_confirmed(conf, _order_key(s, conf.order_id))]


def _cancel(s: Session, conf: RedConfirmationRow, now: datetime) -> bool:
    """Void a 待确认 confirmation and free what it held of the blue invoice (not committed yet); False when it
    was no longer pending."""
    moved = _moved(
        s,
        update(RedConfirmationRow)
        .where(RedConfirmationRow.id == conf.id, RedConfirmationRow.status == "pending")
        .values(status="cancelled", cancelled_at=now),
    )
    if moved != 1:
        return False
    s.execute(
        update(InvoiceRow)
        .where(InvoiceRow.id == conf.blue_invoice_id)
        .values(reversed_with_tax=InvoiceRow.reversed_with_tax - conf.total_with_tax)
    )
    return True


def withdraw_reversal(
    sessions: sessionmaker, seller: str, confirmation_id: str, now: datetime | None = None
) -> list[Outcome]:
    """The merchant voids a 待确认 confirmation (已作废); what it held of the blue invoice is free again. Commits
    both together and returns ``reversals.cancelled``; withdrawing again returns it again. Raises ReversalRefused
    for an unknown or already confirmed confirmation."""
    now = now or datetime.now(timezone.utc)
    with UnitOfWork(sessions) as uow:
        s = uow.session
        conf = _confirmation(s, seller, confirmation_id)
        if conf.status == "cancelled":
            return [_cancelled(conf, _order_key(s, conf.order_id), "withdrawn")]
        if conf.status != "pending":
            raise ReversalRefused("RED_STATE", f"红字确认单 {confirmation_id} 已确认，不能撤销", "confirmation_id")
        if _cancel(s, conf, now):
            uow.commit("reversal.withdrawn")
            s.refresh(conf)
            return [_cancelled(conf, _order_key(s, conf.order_id), "withdrawn")]
    return withdraw_reversal(sessions, seller, confirmation_id, now)


def lapse_due(sessions: sessionmaker, now: datetime | None = None, limit: int = 500) -> list[Outcome]:
    """Void every 待确认 confirmation older than 72 h; returns their ``reversals.cancelled``. Idempotent."""
    now = now or datetime.now(timezone.utc)
    out = []
    with UnitOfWork(sessions) as uow:
        s = uow.session
        due = s.scalars(
            select(RedConfirmationRow)
            .where(RedConfirmationRow.status == "pending", RedConfirmationRow.lapses_at <= now)
            .limit(limit)
        ).all()
        for conf in due:
            if _cancel(s, conf, now):
                uow.commit("reversal.lapsed")
                s.refresh(conf)
                out.append(_cancelled(conf, _order_key(s, conf.order_id), "lapsed"))
    return out


def stuck_confirmed(sessions: sessionmaker, now: datetime | None = None, limit: int = 500) -> list[Outcome]:
    """``reversals.confirmed`` again for confirmations still without their red invoice a while after confirming
    (the publish after the commit was lost); the red invoice is issued once however often it arrives."""
    now = now or datetime.now(timezone.utc)
    with sessions() as s:
        rows = s.scalars(
            select(RedConfirmationRow)
            .where(
                RedConfirmationRow.status == "confirmed",
                RedConfirmationRow.error.is_(None),
                RedConfirmationRow.confirmed_at <= now - REPUBLISH_AFTER,
            )
            .limit(limit)
        ).all()
        return [_confirmed(c, _order_key(s, c.order_id)) for c in rows]


def _issued(row: InvoiceRow, key: str) -> Outcome:
    invoice = Invoice.model_validate(row.invoice)
    return Outcome(
        "invoices.issued",
        InvoiceIssued(
            event_id=stable_id("issued", invoice.number),
            occurred_at=invoice.issued_at,
            order_key=key,
            invoice=invoice,
            documents=row.documents or {},
        ),
    )


def _red_row(s: Session, conf: RedConfirmationRow) -> InvoiceRow | None:
    return s.scalar(select(InvoiceRow).where(InvoiceRow.confirmation_id == conf.confirmation_id))


def _red_claim(conf: RedConfirmationRow, blue: InvoiceRow, now: datetime) -> InvoiceRow:
    """The red invoice's row in state ``issuing``: claimed before the issuer is called, so a crash leaves it."""
    return InvoiceRow(
        order_id=conf.order_id,
        seller_tax_id=conf.seller_tax_id,
        status="issuing",
        created_at=now,
        generation=blue.generation,
        red_of=blue.number,
        confirmation_id=conf.confirmation_id,
    )


def _fully_reversed(s: Session, blue: InvoiceRow) -> bool:
    reds = s.scalars(
        select(InvoiceRow.total_with_tax).where(InvoiceRow.red_of == blue.number, InvoiceRow.status == "issued")
    ).all()
    return sum((r for r in reds if r is not None), ZERO) + (blue.total_with_tax or ZERO) == 0


def issue_red(
    sessions: sessionmaker, issuer: Issuer, ev: ReversalConfirmed, now: datetime | None = None
) -> list[Outcome]:
    """Issue the red invoice of a confirmed 红字确认单: its own number (issuer key ``red:{confirmation id}``),
    negative amounts, ``red_of`` the blue number. Returns ``invoices.issued`` (the render stage draws and
    delivers it, callbacks report it). Exactly once: a redelivered event re-emits the same event id.
    Raises Transient for the runtime to retry; a refusal is recorded and returned as ``invoices.failed``."""
    now = now or datetime.now(timezone.utc)
    with UnitOfWork(sessions) as uow:
        s = uow.session
        conf = s.scalar(select(RedConfirmationRow).where(RedConfirmationRow.confirmation_id == ev.confirmation_id))
        if conf is None or conf.status not in ("confirmed", "issued"):
            return []  # unknown here, or voided: nothing to issue
        key = _order_key(s, conf.order_id)
        blue = s.get_one(InvoiceRow, conf.blue_invoice_id)
        # a racing worker may claim it first: then theirs is the one
        row = _red_row(s, conf) or uow.insert_once(
            _red_claim(conf, blue, now), lambda: _red_row(s, conf), point="reversal.red-claimed"
        )
        assert row is not None, "a claim refused by the unique confirmation id has a winner to read"
        if row.status == "issued":
            return [_issued(row, key)]
        taken = [Taken.from_json(d) for d in conf.lines]
        draft = red_invoice(
            Invoice.model_validate(blue.invoice), taken, "0" * 20, now, conf.confirmation_id, conf.reason
        )
        try:
            number, issued_at = issuer.issue(f"red:{conf.confirmation_id}", draft)
        except IssueRefused as exc:
            row.status, row.error = "failed", exc.reason
            conf.error = exc.reason
            uow.commit("reversal.red-refused")
            return [
                Outcome(
                    "invoices.failed",
                    InvoiceFailed(
                        event_id=stable_id("failed", key, conf.confirmation_id, exc.code),
                        order_key=key,
                        code=exc.code,
                        reason=exc.reason,
                        retryable=False,
                    ),
                )
            ]
        invoice = draft.model_copy(update={"number": number, "issued_at": issued_at})
        row.invoice, row.number, row.status, row.issued_at = (
            invoice.model_dump(mode="json"),
            number,
            "issued",
            issued_at,
        )
        row.total_with_tax, row.error = invoice.total_with_tax, None
        conf.status, conf.red_number, conf.issued_at = "issued", number, issued_at
        s.flush()
        if _fully_reversed(s, blue):
            s.get_one(OrderRow, conf.order_id).status = "reversed"
        uow.commit("reversal.red-issued")
        return [_issued(row, key)]


def confirmations_of(sessions: sessionmaker, blue_number: str) -> list[RedConfirmationRow]:
    with sessions() as s:
        return list(
            s.scalars(
                select(RedConfirmationRow)
                .where(RedConfirmationRow.blue_number == blue_number)
                .order_by(RedConfirmationRow.id)
            )
        )
