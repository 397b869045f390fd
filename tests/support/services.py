"""Driving the services by hand, as the workers would: push an order, submit the buyer's form, issue and render,
ask for delivery."""

from __future__ import annotations

import json

from sqlalchemy import select

from fapiao.adapters.db import BusinessSystemRow, DeliveryRow, InvoiceRow
from fapiao.adapters.documents import DocumentStore
from fapiao.adapters.issuer import SandboxIssuer
from fapiao.adapters.mail import SmtpMailer
from fapiao.domain.backoff import RetryPolicy
from fapiao.domain.links import read_token
from fapiao.services.deliver import DeliveryConfig
from fapiao.services.ingest import LinkMinter, ingest_push
from fapiao.services.issue import delivery_requests, handle_submission
from fapiao.services.merchants import ensure_demo_merchant
from fapiao.services.scan import scan_view, submission_event
from schemas.bill_push import parse_push
from tests.support.samples import sample_push


def accepted_event(sessions, stub_url, bill_no="CB-1", **bill):
    with sessions() as s:
        ensure_demo_merchant(s)
        system = s.scalar(select(BusinessSystemRow))
        system.callback_url = stub_url + "/callback"
        s.commit()
        secret = system.secret
    [out] = ingest_push(
        sessions,
        parse_push(json.dumps(sample_push(billNo=bill_no, **bill)).encode()),
        LinkMinter(b"k" * 32, "http://h"),
    )
    return out.event, secret


SECRET = b"s" * 32


def issue_and_render(sessions, documents: DocumentStore, ev):
    """Issue, then do by hand what the render stage does: store the documents, ask for delivery."""
    outs = handle_submission(sessions, SandboxIssuer(sessions), ev)
    issued = [o.event for o in outs if o.stage == "invoices.issued"]
    for event in issued:
        with sessions() as s:
            row = s.scalar(select(InvoiceRow).where(InvoiceRow.number == event.invoice.number))
            row.documents = documents.save(event.invoice)
            s.commit()
    return outs + [o for event in issued for o in delivery_requests(event.invoice, event.order_key)]


def issued_requests(sessions, tmp_path, bill_no, email="buyer@example.cn", phone=None):
    _, ev = _accepted_and_submission(sessions, bill_no, email, phone or "")
    outs = issue_and_render(sessions, DocumentStore(tmp_path), ev)
    return {o.event.channel.value: o.event for o in outs if o.stage == "delivery.requested"}


def config(retry: RetryPolicy | None = None):
    return DeliveryConfig(
        sender="fapiao@shop.cn", link_secret=SECRET, base_url="http://h", retry=retry or RetryPolicy()
    )


def mailer_for(settings, smtp):
    return SmtpMailer(settings.model_copy(update={"smtp_port": smtp.port, "smtp_timeout": 2}))


def rows(sessions) -> dict[str, DeliveryRow]:
    with sessions() as s:
        return {r.request_id: r for r in s.scalars(select(DeliveryRow))}


def requests(sessions, tmp_path, prefix, n, email=None):
    return [
        issued_requests(sessions, tmp_path, f"{prefix}-{i}", email or f"b{i}@example.cn")["email"] for i in range(n)
    ]


MINTER = LinkMinter(b"k" * 32, "http://h")


def push(sessions, **bill):
    return ingest_push(sessions, parse_push(json.dumps(sample_push(**bill)).encode()), MINTER)


def _accepted_and_submission(sessions, bill_no="ISSUE-1", email="buyer@example.cn", phone=""):
    with sessions() as s:
        ensure_demo_merchant(s)
    [acc] = push(sessions, billNo=bill_no)
    link = read_token(MINTER.secret, acc.event.link.rsplit("/", 1)[1])
    view = scan_view(sessions, link.link_id)
    ev = submission_event(
        view,
        {
            "buyer_type": "enterprise",
            "title": "某某公司",
            "tax_id": "91440300358768292H",
            "email": email,
            "phone": phone,
        },
    )
    return link, ev
