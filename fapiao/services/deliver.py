"""Use case: deliver an issued invoice by e-mail (or SMS), once per delivery request."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import sessionmaker

from fapiao.adapters.db import DeliveryRow, InvoiceRow
from fapiao.adapters.mail import PermanentDeliveryError
from fapiao.domain.links import make_download_token
from fapiao.services import Outcome
from fapiao.services.messages import MessageTemplates
from schemas.events import Channel, DeliveryCompleted, DeliveryRequested, Invoice


class Mailer(Protocol):
    def send(self, msg: EmailMessage) -> None: ...


class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> None: ...


@dataclass(frozen=True)
class DeliveryConfig:
    sender: str
    link_secret: bytes
    base_url: str
    link_days: int = 30
    templates: MessageTemplates = MessageTemplates(None)

    def download_link(self, invoice_number: str, now: datetime) -> str:
        token = make_download_token(self.link_secret, invoice_number, now + timedelta(days=self.link_days))
        return f"{self.base_url}/d/{token}"


def compose_email(invoice: Invoice, documents: dict[str, str], to: str, cfg: DeliveryConfig, request_id: str,
                  link: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = cfg.templates.render("email_subject", invoice, link).strip()
    msg["From"] = cfg.sender
    msg["To"] = to
    # Stable per request: a message re-sent after a crash mid-send carries the same id, so mail clients merge it.
    msg["Message-ID"] = f"<{request_id}@fapiao>"
    msg["X-Fapiao-Request-Id"] = request_id
    msg.set_content(cfg.templates.render("email_body", invoice, link))
    for fmt, mime in (("pdf", ("application", "pdf")), ("json", ("application", "json"))):
        path = documents.get(fmt)
        if path and Path(path).exists():
            msg.add_attachment(Path(path).read_bytes(), maintype=mime[0], subtype=mime[1],
                               filename=f"{invoice.number}.{fmt}")
    return msg


def deliver(sessions: sessionmaker, mailer: Mailer, sms: SmsSender | None, ev: DeliveryRequested,
            cfg: DeliveryConfig) -> list[Outcome]:
    now = datetime.now(timezone.utc)
    with sessions() as s:
        row = s.scalar(select(DeliveryRow).where(DeliveryRow.request_id == ev.request_id))
        if row is None:
            row = DeliveryRow(request_id=ev.request_id, invoice_number=ev.invoice_number, channel=ev.channel.value,
                              target=ev.to, status="sending", reason=ev.reason, attempts=0, updated_at=now)
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
        link = cfg.download_link(invoice.number, now)
        row.attempts += 1
        s.commit()
        try:
            if ev.channel == Channel.email:
                mailer.send(compose_email(invoice, inv_row.documents or {}, ev.to, cfg, ev.request_id, link))
            elif sms is None:
                raise PermanentDeliveryError("no SMS gateway configured (FAPIAO_SMS_GATEWAY_URL)")
            else:
                sms.send(ev.to, cfg.templates.render("sms", invoice, link))
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
