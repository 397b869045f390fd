"""Use case: deliver an issued invoice by e-mail (or SMS), once per delivery request, through outages.

The deliveries ledger (one row per request id) is the durable state of every request::

    queued ──claim──▶ sending ──▶ sent
      ▲                 ├──────▶ failed   (refused address, unknown invoice, ..., or retries spent; error says why)
      └──transient──────┤                 (queued again, due at next_attempt_at; error: the last one)
                        └─(lease over at next_attempt_at: the worker died mid-send)──claim──▶ sending ...

``queued`` means waiting to be sent: now (a new re-send) or at ``next_attempt_at`` (a retry; ``attempts`` > 0).

A claim is one conditional UPDATE on the status and attempt count as they were read, so of two claimants (the
consumer of a redelivered request, the retry timer of any delivery worker) only one sends. A transient failure
(SMTP down, 4xx reply, SMS gateway 5xx) becomes a retry due later, with exponential backoff and jitter
(``RetryPolicy``); the request's offset is committed once that is recorded, and ``retry_due`` (the delivery
worker's timer) sends it when due. Retries were chosen over a retry topic because the ledger must be read
anyway to send each message once, a row can wait hours at no cost, and ops can list and hurry rows with SQL.

Nothing recorded as sent is sent again. A message whose send was cut short (the worker died mid-conversation) is
sent again once its lease is over, under the same Message-ID, which mail clients merge."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol, cast

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from fapiao.adapters.db import DeliveryRow, InvoiceRow, OrderRow
from fapiao.adapters.mail import Attachment, OutgoingMail, PermanentDeliveryError, mime_message
from fapiao.adapters.uow import UnitOfWork
from fapiao.domain.backoff import RetryPolicy
from fapiao.domain.links import make_download_token
from fapiao.errors import Transient
from fapiao.services import Outcome
from fapiao.services.messages import MessageTemplates
from schemas.events import Channel, DeliveryCompleted, DeliveryRequested, Invoice

log = logging.getLogger("fapiao.delivery")

FINAL = ("sent", "failed")
WAITING = ("queued", "sending")


class Mailer(Protocol):
    def send(self, msg: OutgoingMail) -> None: ...


class SmsSender(Protocol):
    def send(self, phone: str, text: str) -> None: ...


@dataclass(frozen=True)
class DeliveryConfig:
    sender: str
    link_secret: bytes
    base_url: str
    link_days: int = 30
    templates: MessageTemplates = MessageTemplates(None)
    retry: RetryPolicy = RetryPolicy()

    def download_link(self, invoice_number: str, now: datetime) -> str:
        token = make_download_token(self.link_secret, invoice_number, now + timedelta(days=self.link_days))
        return f"{self.base_url}/d/{token}"


def compose_email(
    invoice: Invoice, documents: dict[str, str], to: str, cfg: DeliveryConfig, request_id: str, link: str
) -> OutgoingMail:
    """The invoice's e-mail: the merchant's subject and text with the download link, the PDF and the JSON attached
    (those on disk), written out once as the bytes to send (``mime_message``)."""
    attachments = []
    for fmt, mime in (("pdf", "application/pdf"), ("json", "application/json")):
        path = documents.get(fmt)
        if path:
            try:
                data = Path(path).read_bytes()
            except FileNotFoundError:
                continue
            attachments.append(Attachment(f"{invoice.number}.{fmt}", mime, data))
    return mime_message(
        sender=cfg.sender,
        to=to,
        subject=cfg.templates.render("email_subject", invoice, link).strip(),
        text=cfg.templates.render("email_body", invoice, link),
        attachments=attachments,
        # Stable per request: a message re-sent after a crash mid-send carries the same id, so mail clients merge it.
        headers=[("Message-ID", f"<{request_id}@fapiao>"), ("X-Fapiao-Request-Id", request_id)],
    )


def deliver(
    sessions: sessionmaker,
    mailer: Mailer,
    sms: SmsSender | None,
    ev: DeliveryRequested,
    cfg: DeliveryConfig,
    *,
    now: datetime | None = None,
) -> list[Outcome]:
    """Handle one ``delivery.requested``: record it once, then send it unless it is final, being sent, or waiting
    for a retry that is not due. Returns ``delivery.completed`` when the request is (or already was) sent or
    failed; nothing while it waits for a retry, which is committed to the ledger before this returns.
    Idempotent per request id; raises only database errors (the row is then retried after its lease).

    Two commits per message: the claim before the message goes out, the result after."""
    now = now or _utcnow()
    with UnitOfWork(sessions) as uow:
        s = uow.session
        row = uow.insert_once(_new_row(ev, now, cfg.retry.lease), point="deliver.request-claimed")
        if row is None:  # recorded before: a redelivery, a re-send queued by the gateway, a racing consumer
            row = s.scalars(select(DeliveryRow).where(DeliveryRow.request_id == ev.request_id)).one()
            if row.status in FINAL:
                return [_completed(row, ev.order_key)]
            if not _due(row, now):
                return []  # being sent, or waiting: the retry timer owns it now
            claim = _claim(s, row, now, cfg.retry.lease)
            uow.commit("deliver.redelivery-claimed")
            if claim is None:
                return []  # taken by another claimant meanwhile
            _written(row, claim)
        result = _attempt(s, row, mailer, sms, cfg, now)
        uow.commit("deliver.attempt-recorded")
        return _settle(s, row, result, ev.order_key)


def deliver_batch(
    sessions: sessionmaker, mailer: Mailer, sms: SmsSender | None, events: list[DeliveryRequested], cfg: DeliveryConfig
) -> list[list[Outcome]]:
    """``deliver`` for each request of a batch, in order, the e-mails on one SMTP connection when the mailer
    offers one (``connection()``). Each request keeps its own ledger row and commits, exactly as ``deliver``
    alone: a batch that fails part-way and is handled again sends nothing twice. Returns the outcomes per
    request; raises only database errors."""
    with _connection(mailer) as conn:
        return [deliver(sessions, conn, sms, ev, cfg) for ev in events]


@contextmanager
def _connection(mailer: Mailer) -> Iterator[Mailer]:
    """The mailer's shared connection for a run of messages, or the mailer itself if it has none."""
    opener = getattr(mailer, "connection", None)
    if opener is None:
        yield mailer
    else:
        with opener() as conn:
            yield conn


def retry_due(
    sessions: sessionmaker,
    mailer: Mailer,
    sms: SmsSender | None,
    cfg: DeliveryConfig,
    *,
    now: datetime | None = None,
    limit: int = 500,
) -> list[Outcome]:
    """Send the deliveries whose time has come: retries that are due, claims whose lease is over (a worker died
    mid-send), and queued re-sends older than a lease (their request never came). Stops at the first transient
    failure, so a server still down is probed with one message per round, not all of them. Returns
    ``delivery.completed`` for what ended; safe to run in many workers at once (each row is claimed)."""
    outcomes: list[Outcome] = []
    with UnitOfWork(sessions) as uow, _connection(mailer) as conn:
        s = uow.session
        at = now or _utcnow()
        due = s.scalars(
            select(DeliveryRow)
            .where(_due_clause(at, cfg.retry.lease))
            .order_by(DeliveryRow.next_attempt_at, DeliveryRow.id)
            .limit(limit)
        ).all()
        for row in due:
            at = now or _utcnow()
            claim = _claim(s, row, at, cfg.retry.lease)
            uow.commit("deliver.retry-claimed")
            if claim is None:
                continue
            _written(row, claim)
            order_key = _order_key(s, row.invoice_number)
            result = _attempt(s, row, conn, sms, cfg, at)
            uow.commit("deliver.retry-recorded")
            outcomes += _settle(s, row, result, order_key)
            if row.status == "queued":  # failed again: the server is probably still away
                break
    return outcomes


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _new_row(ev: DeliveryRequested, now: datetime, lease: timedelta) -> DeliveryRow:
    """The request's row, claimed by us (``sending``), to insert once."""
    return DeliveryRow(
        request_id=ev.request_id,
        invoice_number=ev.invoice_number,
        channel=ev.channel.value,
        target=ev.to,
        status="sending",
        reason=ev.reason,
        attempts=1,
        next_attempt_at=now + lease,
        created_at=now,
        updated_at=now,
    )


def _due(row: DeliveryRow, now: datetime) -> bool:
    """For the consumer of the row's request: due unless a retry or a claim runs to a later time."""
    return row.next_attempt_at is None or row.next_attempt_at <= now


def _due_clause(now: datetime, lease: timedelta):
    """For the timer, which has no request in hand: a row without a time (a re-send whose request is late, a
    ``sending`` row from before 0007) only once it is a lease old."""
    return and_(
        DeliveryRow.status.in_(WAITING),
        or_(
            DeliveryRow.next_attempt_at <= now,
            and_(DeliveryRow.next_attempt_at.is_(None), DeliveryRow.updated_at <= now - lease),
        ),
    )


def _claim(s: Session, row: DeliveryRow, now: datetime, lease: timedelta) -> dict | None:
    """Take the row for one attempt if nobody changed it since it was read. Returns the changes if we got it, to
    set on the row (``_written``) once the caller has committed them; ``None`` if someone else has it."""
    changes = {
        "status": "sending",
        "attempts": row.attempts + 1,
        "next_attempt_at": now + lease,
        "created_at": row.created_at or row.updated_at,
        "updated_at": now,
    }
    result = cast(
        CursorResult,
        s.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id == row.id, DeliveryRow.status == row.status, DeliveryRow.attempts == row.attempts)
            .values(changes)
            .execution_options(synchronize_session=False)
        ),
    )
    return changes if result.rowcount == 1 else None


def _written(row: DeliveryRow, changes: dict) -> None:
    """Set what an UPDATE of ours just committed on the loaded row, as loaded values (nothing left to flush): the
    row is as we wrote it, no need to read it back."""
    for key, value in changes.items():
        set_committed_value(row, key, value)


def _attempt(
    s: Session,
    row: DeliveryRow,
    mailer: Mailer,
    sms: SmsSender | None,
    cfg: DeliveryConfig,
    now: datetime,
) -> _Result:
    """One try of a row we hold; writes what came of it, for the caller to commit and then ``_settle``."""
    inv_row = s.scalar(select(InvoiceRow).where(InvoiceRow.number == row.invoice_number))
    try:
        _send(row, inv_row, mailer, sms, cfg, now)
    except Transient as exc:
        when = cfg.retry.next_attempt(row.attempts, row.created_at or now, now)
        if when is None:
            return _end(
                s,
                row,
                "failed",
                f"{cfg.retry.gave_up(row.attempts, row.created_at or now, now)}; last error: {exc}",
                now,
            )
        return _end(s, row, "queued", str(exc), now, next_attempt_at=when)
    except PermanentDeliveryError as exc:
        return _end(s, row, "failed", str(exc), now)
    except Exception as exc:  # the request cannot be carried out as asked: bad data or a bug, not an outage
        log.exception("delivery %s cannot be sent", row.request_id)
        return _end(s, row, "failed", f"{type(exc).__name__}: {exc}", now)
    return _end(s, row, "sent", None, now)


def _send(
    row: DeliveryRow,
    inv_row: InvoiceRow | None,
    mailer: Mailer,
    sms: SmsSender | None,
    cfg: DeliveryConfig,
    now: datetime,
) -> None:
    if inv_row is None or not inv_row.invoice:
        raise PermanentDeliveryError(f"invoice {row.invoice_number} is not known")
    invoice = Invoice.model_validate(inv_row.invoice)
    link = cfg.download_link(invoice.number, now)
    if row.channel == Channel.email.value:
        mailer.send(compose_email(invoice, inv_row.documents or {}, row.target, cfg, row.request_id, link))
    elif sms is None:
        raise PermanentDeliveryError("no SMS gateway configured (FAPIAO_SMS_GATEWAY_URL)")
    else:
        sms.send(row.target, cfg.templates.render("sms", invoice, link))


def _end(
    s: Session,
    row: DeliveryRow,
    status: str,
    error: str | None,
    now: datetime,
    next_attempt_at: datetime | None = None,
) -> _Result:
    """Write the attempt's result (the caller commits it). A message that went out is recorded as sent whatever
    happened meanwhile; any other result only while the row is still ours (not taken over after our lease ran
    out)."""
    if status == "sent":
        still = DeliveryRow.status != "sent"
    else:
        still = and_(DeliveryRow.status == "sending", DeliveryRow.attempts == row.attempts)
    changes = {
        "status": status,
        "error": error[:500] if error else None,
        "next_attempt_at": next_attempt_at,
        "updated_at": now,
    }
    result = cast(
        CursorResult,
        s.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id == row.id, still)
            .values(changes)
            .execution_options(synchronize_session=False)
        ),
    )
    return _Result(changes, result.rowcount == 1)


@dataclass(frozen=True)
class _Result:
    """An attempt's result as ``_end`` wrote it: the changes, and whether they landed (the row was still ours)."""

    changes: dict
    written: bool


def _settle(s: Session, row: DeliveryRow, result: _Result, order_key: str) -> list[Outcome]:
    """After the result is committed: the row as it now stands, and ``delivery.completed`` if it is final."""
    if result.written:
        _written(row, result.changes)
    else:  # sent already, or taken over after our lease: report the row as it stands
        s.refresh(row)
    return [_completed(row, order_key)] if row.status in FINAL else []


def _order_key(s: Session, invoice_number: str) -> str:
    found = s.execute(
        select(OrderRow.seller_tax_id, OrderRow.bill_no)
        .join(InvoiceRow, InvoiceRow.order_id == OrderRow.id)
        .where(InvoiceRow.number == invoice_number)
    ).first()
    return f"{found[0]}:{found[1]}" if found else f":{invoice_number}"


def _completed(row: DeliveryRow, order_key: str) -> Outcome:
    return Outcome(
        "delivery.completed",
        DeliveryCompleted(
            event_id=f"{row.request_id}:completed",
            occurred_at=row.updated_at,
            order_key=order_key,
            request_id=row.request_id,
            invoice_number=row.invoice_number,
            channel=Channel(row.channel),
            outcome=row.status,
            attempts=row.attempts,
            error=row.error,
        ),
    )


def recent_deliveries(sessions: sessionmaker, limit: int = 200) -> list[DeliveryRow]:
    with sessions() as s:
        return list(s.scalars(select(DeliveryRow).order_by(DeliveryRow.id.desc()).limit(limit)))


def pending_deliveries(sessions: sessionmaker, *, include_failed: bool = False) -> list[DeliveryRow]:
    """The ops view: deliveries not finished yet (waiting to be sent or retried, being sent), soonest due first;
    with ``include_failed`` also those that failed."""
    states = WAITING + (("failed",) if include_failed else ())
    with sessions() as s:
        return list(
            s.scalars(
                select(DeliveryRow)
                .where(DeliveryRow.status.in_(states))
                .order_by(DeliveryRow.status.desc(), DeliveryRow.next_attempt_at, DeliveryRow.id)
            )
        )


def waiting_counts(sessions: sessionmaker) -> dict[str, int]:
    """Unfinished deliveries for the ``fapiao_deliveries_waiting`` gauge: ``retrying`` (queued after a failed
    try), ``queued`` (not tried yet), ``sending``."""
    with sessions() as s:
        found = s.execute(
            select(DeliveryRow.status, DeliveryRow.attempts, func.count())
            .where(DeliveryRow.status.in_(WAITING))
            .group_by(DeliveryRow.status, DeliveryRow.attempts)
        ).all()
    counts = {"retrying": 0, "queued": 0, "sending": 0}
    for status, attempts, n in found:
        counts["retrying" if status == "queued" and attempts else status] += n
    return counts


def retry_now(
    sessions: sessionmaker,
    request_ids: list[str] | None = None,
    *,
    include_failed: bool = False,
    now: datetime | None = None,
) -> list[str]:
    """Make deliveries waiting for a retry due at once (all, or those named); with ``include_failed``, give failed
    ones one more try as well (then the usual limits apply). The delivery worker's timer sends them within
    ``FAPIAO_DELIVERY_RETRY_INTERVAL``. Returns the request ids made due; idempotent."""
    now = now or _utcnow()
    states = ("queued",) + (("failed",) if include_failed else ())
    with UnitOfWork(sessions) as uow:
        s = uow.session
        query = select(DeliveryRow.request_id).where(DeliveryRow.status.in_(states))
        if request_ids is not None:
            query = query.where(DeliveryRow.request_id.in_(request_ids))
        ids = list(s.scalars(query))
        if ids:
            s.execute(
                update(DeliveryRow)
                .where(DeliveryRow.request_id.in_(ids), DeliveryRow.status.in_(states))
                .values(status="queued", next_attempt_at=now, updated_at=now)
            )
            uow.commit("deliver.retries-due")
    return ids
