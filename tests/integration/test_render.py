"""The render stage (issue #11 point 1): invoices.issued → the documents on disk and recorded → documents.rendered
and the delivery requests; nothing drawn twice, the same event ids on every redelivery."""

from unittest import mock

import pytest
from sqlalchemy import select

from fapiao.adapters.db import InvoiceRow
from fapiao.adapters.documents import DocumentStore
from fapiao.adapters.issuer import SandboxIssuer
from fapiao.registry import worker_spec
from fapiao.services.issue import handle_submission
from fapiao.services.render import InvoiceNotRecorded, render_issued, render_one
from fapiao.errors import Refused
from fapiao.services.scan import request_resend, scan_view
from schemas.events import DocumentRendered
from tests.support.services import _accepted_and_submission


def _issued(sessions, bill_no="RENDER-1", phone=""):
    link, ev = _accepted_and_submission(sessions, bill_no=bill_no, phone=phone)
    [issued] = [
        o.event for o in handle_submission(sessions, SandboxIssuer(sessions), ev) if o.stage == "invoices.issued"
    ]
    return link, issued


def _documents(sessions, number):
    with sessions() as s:
        return s.scalar(select(InvoiceRow.documents).where(InvoiceRow.number == number))


def test_renders_records_then_asks_for_delivery(sessions, tmp_path):
    link, issued = _issued(sessions, phone="13800138000")
    assert scan_view(sessions, link.link_id).status == "issued"  # shown before any document exists
    assert not _documents(sessions, issued.invoice.number)
    store = DocumentStore(tmp_path / "docs")
    outcomes = render_one(sessions, store, issued)
    assert [o.stage for o in outcomes] == ["documents.rendered", "delivery.requested", "delivery.requested"]
    rendered = outcomes[0].event
    assert isinstance(rendered, DocumentRendered) and rendered.invoice_number == issued.invoice.number
    assert rendered.order_key == issued.order_key and outcomes[0].key == issued.order_key.encode()
    assert set(rendered.documents) == {"json", "html", "pdf"}
    assert open(rendered.documents["pdf"], "rb").read(5) == b"%PDF-"
    assert _documents(sessions, issued.invoice.number) == rendered.documents
    assert {o.event.channel.value for o in outcomes[1:]} == {"email", "sms"}
    assert scan_view(sessions, link.link_id).documents == rendered.documents


def test_redelivery_draws_nothing_and_re_emits_the_same_ids(sessions, tmp_path):
    _, issued = _issued(sessions)
    store = DocumentStore(tmp_path / "docs")
    first = render_one(sessions, store, issued)
    with mock.patch("fapiao.adapters.documents.render_invoice_pdf", side_effect=AssertionError("drawn twice")):
        again = render_issued(sessions, store, [issued, issued])
    ids = [o.event.event_id for o in first]
    assert [[o.event.event_id for o in r] for r in again] == [ids, ids]


def test_files_written_before_a_crash_are_recorded_not_redrawn(sessions, tmp_path):
    """The worker died after writing the files and before its commit: the redelivered event records them."""
    _, issued = _issued(sessions)
    store = DocumentStore(tmp_path / "docs")
    store.save(issued.invoice)
    with mock.patch("fapiao.adapters.documents.render_invoice_pdf", side_effect=AssertionError("drawn twice")):
        [rendered, *_] = render_one(sessions, store, issued)
    assert _documents(sessions, issued.invoice.number) == rendered.event.documents


def test_a_half_written_set_is_drawn_again(sessions, tmp_path):
    _, issued = _issued(sessions)
    store = DocumentStore(tmp_path / "docs")
    store.save(issued.invoice)
    store.path(issued.invoice, "pdf").unlink()  # died between the HTML and the PDF
    [rendered, *_] = render_one(sessions, store, issued)
    assert open(rendered.event.documents["pdf"], "rb").read(5) == b"%PDF-"


def test_a_batch_renders_each_invoice(sessions, tmp_path):
    events = [_issued(sessions, bill_no=f"RENDER-B{i}")[1] for i in range(3)]
    results = render_issued(sessions, DocumentStore(tmp_path / "docs"), events)
    assert [r[0].event.invoice_number for r in results] == [e.invoice.number for e in events]
    assert all(_documents(sessions, e.invoice.number) for e in events)


def test_an_unknown_invoice_is_refused(sessions, tmp_path):
    _, issued = _issued(sessions)
    stranger = issued.model_copy(update={"invoice": issued.invoice.model_copy(update={"number": "9" * 20})})
    with pytest.raises(InvoiceNotRecorded):
        render_one(sessions, DocumentStore(tmp_path / "docs"), stranger)


def test_render_is_a_worker_of_its_own():
    spec = worker_spec("render")
    assert spec.consumes == ("invoices.issued",)
    assert set(spec.produces) == {"documents.rendered", "delivery.requested"}
    assert spec.group("fapiao") == "fapiao-render"
    assert "delivery.requested" not in worker_spec("invoice-issue").produces


def test_resend_waits_for_the_documents(sessions, tmp_path):
    """重发 on the second-scan page: refused while the documents are being drawn (the render stage mails them
    then), new delivery requests once they exist."""
    link, issued = _issued(sessions, bill_no="RENDER-RESEND")
    assert request_resend(sessions, scan_view(sessions, link.link_id)) == Refused(
        "DOCUMENTS_PENDING", "发票文件生成中，生成后将自动发送"
    )
    render_one(sessions, DocumentStore(tmp_path / "docs"), issued)
    outcomes = request_resend(sessions, scan_view(sessions, link.link_id))
    assert [(o.stage, o.event.reason) for o in outcomes] == [("delivery.requested", "resend")]
