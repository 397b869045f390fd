"""Use case: an invoice was issued; draw its documents (PDF, JSON, HTML), record where they are, and only then ask
for its delivery, so a message never goes out for a document that does not exist.

Rendering is a stage of its own (the ``render`` worker, its own consumer group) because issuing a number must
never wait for a document to be drawn; it scales by running more render processes.
"""

from __future__ import annotations

from typing import TypeGuard

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from fapiao.adapters.db import InvoiceRow
from fapiao.adapters.documents import FORMATS, DocumentStore
from fapiao.adapters.uow import UnitOfWork
from fapiao.services import Outcome, stable_id
from fapiao.services.issue import delivery_requests
from schemas.events import DocumentRendered, Invoice, InvoiceIssued


class InvoiceNotRecorded(LookupError):
    """An ``invoices.issued`` event names an invoice the database does not hold (dead-lettered, not retried)."""


def _recorded(documents: dict | None) -> TypeGuard[dict]:
    """All the formats' documents are recorded (and so ``documents`` is a dict)."""
    return documents is not None and all(fmt in documents for fmt in FORMATS)


def _outcomes(invoice: Invoice, order_key: str, documents: dict[str, str]) -> list[Outcome]:
    rendered = DocumentRendered(
        event_id=stable_id("rendered", invoice.number),
        order_key=order_key,
        invoice_number=invoice.number,
        seller_tax_id=invoice.seller_tax_id,
        invoice=invoice,
        documents=documents,
    )
    return [Outcome("documents.rendered", rendered), *delivery_requests(invoice, order_key)]


def render_issued(sessions: sessionmaker, store: DocumentStore, events: list[InvoiceIssued]) -> list[list[Outcome]]:
    """Render the documents of each issued invoice in ``events`` and record them, in one transaction.

    Returns, per event, ``documents.rendered`` and the ``delivery.requested`` events (e-mail, SMS) to publish.
    Idempotent: an invoice whose documents are recorded, or already on disk after a crash before the commit, is
    not drawn again, and a redelivered event re-emits the same event ids. Raises ``InvoiceNotRecorded`` when an
    event's invoice is not in the database (the caller dead-letters it)."""
    numbers = [ev.invoice.number for ev in events]
    with UnitOfWork(sessions) as uow:
        rows = {r.number: r for r in uow.session.scalars(select(InvoiceRow).where(InvoiceRow.number.in_(numbers)))}
        results = []
        for ev in events:
            row = rows.get(ev.invoice.number)
            if row is None or row.invoice is None:
                raise InvoiceNotRecorded(f"invoice {ev.invoice.number} of {ev.order_key} is not recorded")
            invoice = Invoice.model_validate(row.invoice)  # the database's copy is the one the documents show
            documents = dict(row.documents) if _recorded(row.documents) else None
            if documents is None:
                documents = store.existing(invoice) or store.save(invoice)
                row.documents = documents
            results.append(_outcomes(invoice, ev.order_key, documents))
        uow.commit("render.documents-recorded")
    return results


def render_one(sessions: sessionmaker, store: DocumentStore, ev: InvoiceIssued) -> list[Outcome]:
    """``render_issued`` for one event (what the worker falls back to when a batch fails). Commits, raises and is
    idempotent as ``render_issued``."""
    return render_issued(sessions, store, [ev])[0]
