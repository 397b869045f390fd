"""Use case: push results back to the business system's callback URL (FACTS §1.4) on accepted, rejected and
issued. Each event is posted at most once successfully (a ledger row per event id); transient failures are retried
a few times at once (tenacity, bounded, jittered), then recorded with a due time and retried later by
``retry_due``. A failing merchant never holds up a partition."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone
from typing import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from fapiao.adapters.db import BusinessSystemRow, CallbackRow, OrderRow
from fapiao.adapters.http_client import PermanentHttpError
from fapiao.adapters.uow import UnitOfWork
from fapiao.errors import Transient, transient_retries
from schemas.events import InvoiceIssued, OrderAccepted, OrderRejected

Post = Callable[[str, bytes, dict, float], tuple[int, str]]
MAX_BACKOFF = timedelta(hours=6)


def payload(event) -> tuple[str, str | None, dict]:
    """(kind, business system code or None if it must be looked up, body)."""
    stamp = int(event.occurred_at.timestamp() * 1000)
    if isinstance(event, OrderAccepted):
        o = event.order
        return (
            "accepted",
            o.business_system_code,
            {
                "Event": "accepted",
                "Code": event.code,
                "Message": event.message,
                "SaleNo": o.bill_no,
                "TaxNo": o.seller_tax_id,
                "QrLink": event.link,
                "ExpiresAt": event.link_expires_at.isoformat(),
                **({"H5Url": event.h5_url} if event.h5_url else {}),
                "Timestamp": stamp,
            },
        )
    if isinstance(event, OrderRejected):
        return (
            "rejected",
            event.business_system_code,
            {
                "Event": "rejected",
                "Code": event.code,
                "Message": event.message,
                "SaleNo": event.bill_no,
                "TaxNo": event.order_key.split(":", 1)[0],
                "Errors": [v.model_dump() for v in event.violations],
                "Timestamp": stamp,
            },
        )
    if isinstance(event, InvoiceIssued):
        inv = event.invoice
        return (
            "issued",
            None,
            {
                "Event": "issued",
                "SaleNo": inv.bill_no,
                "InvoiceNo": inv.number,
                "InvoiceCode": "",
                "InvoiceType": inv.kind.value,
                "InvoiceAmount": str(inv.total_with_tax),
                "InvoiceTime": inv.issued_at.strftime("%Y-%m-%d %H:%M:%S"),
                "InvoiceTitle": inv.buyer.title,
                "TaxNo": inv.buyer.tax_id or "",
                "InvoiceCompany": inv.seller_name,
                "InvoiceAddr": inv.buyer.address_tel or "",
                "InvoiceBank": inv.buyer.bank_account or "",
                "InvoiceUrl": event.documents.get("html", ""),
                "OpenId": "",
                "Timestamp": stamp,
                **({"RedOf": inv.red_of, "RedConfirmationId": inv.red_confirmation_id} if inv.red_of else {}),
            },
        )
    raise TypeError(f"no callback for {type(event).__name__}")


def signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _system_for(s: Session, code: str | None, order_key: str) -> BusinessSystemRow | None:
    if code is None:
        seller, _, bill_no = order_key.partition(":")
        code = s.scalar(
            select(OrderRow.business_system_code).where(OrderRow.seller_tax_id == seller, OrderRow.bill_no == bill_no)
        )
    return s.scalar(select(BusinessSystemRow).where(BusinessSystemRow.code == code)) if code else None


def _attempt(row: CallbackRow, secret: str, post: Post, timeout: float, tries: int, now: datetime) -> None:
    """POST the row's payload (a few quick tries) and put the result on the row: sent, or failed with the time of
    the next try (transient) or none (refused). The caller commits it."""
    body = json.dumps(row.payload, ensure_ascii=False).encode()
    headers = {
        "X-Fapiao-Event": row.kind,
        "X-Fapiao-Event-Id": row.event_id,
        "X-Fapiao-Signature": "sha256=" + signature(secret, body),
    }
    try:
        for attempt in transient_retries(tries):
            with attempt:
                row.attempts += 1
                post(row.url, body, headers, timeout)
        row.status, row.last_error, row.next_attempt_at = "sent", None, None
    except Transient as exc:
        row.status, row.last_error = "failed", str(exc)[:500]
        row.next_attempt_at = now + min(MAX_BACKOFF, timedelta(seconds=30 * 2 ** min(row.attempts, 12)))
    except PermanentHttpError as exc:
        row.status, row.last_error, row.next_attempt_at = "failed", str(exc)[:500], None  # needs a person
    row.updated_at = now


def push_back(
    sessions: sessionmaker, post: Post, event, *, timeout: float, tries: int = 3, now: datetime | None = None
) -> list:
    """POST an ``orders.accepted``, ``orders.rejected`` or ``invoices.issued`` to its business system's callback
    URL (nothing when it has none). Commits a ``callbacks`` row for the event id (pending) before posting, then
    its result: sent, or failed with the time of the next try (transient) or none (refused: a person decides).
    Idempotent per event id: an event already sent or failed is not posted again here (``retry_due`` owns failed
    ones). HTTP failures are recorded, not raised; database errors propagate. Publishes nothing."""
    now = now or datetime.now(timezone.utc)
    kind, code, body = payload(event)
    with UnitOfWork(sessions) as uow:
        s = uow.session
        row = s.scalar(select(CallbackRow).where(CallbackRow.event_id == event.event_id))
        if row is not None and row.status != "pending":
            return []
        system = _system_for(s, code, event.order_key)
        if system is None or not system.callback_url:
            return []
        if row is None:
            row = CallbackRow(
                event_id=event.event_id,
                business_system_code=system.code,
                kind=kind,
                url=system.callback_url,
                payload=body,
                status="pending",
                attempts=0,
                updated_at=now,
            )
            if uow.insert_once(row, point="callbacks.pending-recorded") is None:
                return []  # another worker has it
        _attempt(row, system.secret, post, timeout, tries, now)
        uow.commit("callbacks.attempt-recorded")
    return []


def retry_due(
    sessions: sessionmaker, post: Post, *, timeout: float, now: datetime | None = None, limit: int = 100
) -> int:
    """Try again every failed callback whose time has come; commits each one's result; returns how many were sent."""
    now = now or datetime.now(timezone.utc)
    sent = 0
    with UnitOfWork(sessions) as uow:
        s = uow.session
        due = s.scalars(
            select(CallbackRow).where(CallbackRow.status == "failed", CallbackRow.next_attempt_at <= now).limit(limit)
        ).all()
        for row in due:
            system = s.scalar(select(BusinessSystemRow).where(BusinessSystemRow.code == row.business_system_code))
            _attempt(row, system.secret if system else "", post, timeout, 1, now)
            uow.commit("callbacks.retry-recorded")
            sent += row.status == "sent"
    return sent


def failed_callbacks(sessions: sessionmaker) -> list[CallbackRow]:
    with sessions() as s:
        return list(s.scalars(select(CallbackRow).where(CallbackRow.status == "failed").order_by(CallbackRow.id)))


def make_all_due(sessions: sessionmaker, now: datetime) -> int:
    """``callbacks retry --all``: every failed callback, permanent ones too, becomes due at ``now``."""
    with UnitOfWork(sessions) as uow:
        rows = uow.session.scalars(select(CallbackRow).where(CallbackRow.status == "failed")).all()
        for row in rows:
            row.next_attempt_at = now
        uow.commit("callbacks.all-due")
        return len(rows)
