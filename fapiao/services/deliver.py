"""Use case: deliver an issued invoice by e-mail (or SMS), once per delivery request."""

from __future__ import annotations

from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from fapiao.adapters.db import DeliveryRow, InvoiceRow
from fapiao.adapters.mail import PermanentDeliveryError
from fapiao.services import Outcome
from schemas.events import Channel, DeliveryCompleted, DeliveryRequested, Invoice


class Mailer(Protocol):
    def send(self, msg: EmailMessage) -> None: ...


def compose_email(invoice: Invoice, documents: dict[str, str], to: str, sender: str, request_id: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = f"您的电子发票（{invoice.seller_name}，发票号码 {invoice.number}）"
    msg["From"] = sender
    msg["To"] = to
    msg["Message-ID"] = make_msgid(idstring=request_id.replace("-", ""), domain="fapiao")
    msg["X-Fapiao-Request-Id"] = request_id
    msg.set_content(
        f"{invoice.buyer.title}，您好：\n\n"
        f"{invoice.seller_name} 已为您开具电子发票。\n"
        f"发票号码：{invoice.number}\n开票日期：{invoice.issued_at:%Y-%m-%d}\n"
        f"价税合计：¥{invoice.total_with_tax}（{invoice.total_with_tax_upper}）\n\n"
        "发票文件见附件。此邮件由系统自动发送，请勿回复。\n"
    )
    for fmt, mime in (("html", ("text", "html")), ("json", ("application", "json")), ("pdf", ("application", "pdf"))):
        path = documents.get(fmt)
        if path and Path(path).exists():
            msg.add_attachment(Path(path).read_bytes(), maintype=mime[0], subtype=mime[1],
                               filename=f"{invoice.number}.{fmt}")
    return msg


def deliver(sessions: sessionmaker, mailer: Mailer, ev: DeliveryRequested, sender: str) -> list[Outcome]:
    now = datetime.now(timezone.utc)
    with sessions() as s:
        row = s.scalar(select(DeliveryRow).where(DeliveryRow.request_id == ev.request_id))
        if row is None:
            row = DeliveryRow(request_id=ev.request_id, invoice_number=ev.invoice_number, channel=ev.channel.value,
                              target=ev.to, status="sending", attempts=0, updated_at=now)
            s.add(row)
            try:
                s.commit()
            except IntegrityError:
                s.rollback()
                row = s.scalar(select(DeliveryRow).where(DeliveryRow.request_id == ev.request_id))
        if row.status in ("sent", "failed"):
            return [_completed(ev, row)]
        inv_row = s.scalar(select(InvoiceRow).where(InvoiceRow.number == ev.invoice_number))
        invoice = Invoice.model_validate(inv_row.invoice)
        row.attempts += 1
        s.commit()
        try:
            if ev.channel != Channel.email:
                raise PermanentDeliveryError("SMS gateway not configured")
            mailer.send(compose_email(invoice, inv_row.documents or {}, ev.to, sender, ev.request_id))
            row.status, row.error = "sent", None
        except PermanentDeliveryError as exc:
            row.status, row.error = "failed", str(exc)[:500]
        row.updated_at = datetime.now(timezone.utc)
        s.commit()
        return [_completed(ev, row)]


def _completed(ev: DeliveryRequested, row: DeliveryRow) -> Outcome:
    return Outcome(
        "delivery.completed",
        DeliveryCompleted(
            event_id=f"{ev.request_id}:completed",
            occurred_at=row.updated_at,
            order_key=ev.order_key,
            request_id=ev.request_id,
            invoice_number=ev.invoice_number,
            channel=ev.channel,
            outcome=row.status,
            attempts=row.attempts,
            error=row.error,
        ),
    )


def recent_deliveries(sessions: sessionmaker, limit: int = 200) -> list[DeliveryRow]:
    with sessions() as s:
        return list(s.scalars(select(DeliveryRow).order_by(DeliveryRow.id.desc()).limit(limit)))
