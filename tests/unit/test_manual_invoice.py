"""Issue #15 points 6 and 7: the invoice's QR holds what verification apps read (FACTS §3.1), and the HTML and
the PDF print one title, the 数电 layout's."""

import re
from datetime import datetime, timezone

import pypdfium2 as pdfium
import pytest
import zxingcpp

from fapiao.adapters.documents import DocumentStore
from fapiao.adapters.pdf import render_invoice_pdf
from fapiao.domain.invoice import build_invoice, invoice_qr_payload, invoice_title
from fapiao.domain.order_rules import check_bill
from schemas.bill_push import Bill
from schemas.events import Buyer, BuyerType, InvoiceKind
from tests.support.samples import bill, CTX

QR = re.compile(r"^01,(31|32),,(\d{20}),(\d+\.\d{2}),(\d{8}),,([0-9A-F]{4})$")


def invoice(kind: InvoiceKind = InvoiceKind.digital_normal):
    order = check_bill(Bill.model_validate(bill()), CTX).model_copy(update={"invoice_kind": kind})
    buyer = Buyer(
        buyer_type=BuyerType.enterprise, title="某某科技有限公司", tax_id="91440300358768292H", email="a@b.cn"
    )
    return build_invoice(order, buyer, "26440670700000000123", datetime(2026, 11, 22, 9, 30, tzinfo=timezone.utc))


@pytest.mark.parametrize("kind,code", [(InvoiceKind.digital_special, "31"), (InvoiceKind.digital_normal, "32")])
def test_qr_payload_shape(kind, code):
    inv = invoice(kind)
    m = QR.match(invoice_qr_payload(inv))
    assert m, invoice_qr_payload(inv)
    assert m.group(1) == code and m.group(2) == inv.number and m.group(3) == str(inv.total_amount)
    assert m.group(4) == "20261122"
    assert invoice_qr_payload(inv) == invoice_qr_payload(inv)  # deterministic check characters


def decode_pdf_qr(pdf: bytes) -> str:
    image = pdfium.PdfDocument(pdf)[0].render(scale=4).to_pil().convert("L")
    found = zxingcpp.read_barcodes(image)
    assert found, "no QR found on the PDF"
    return found[0].text


def test_pdf_qr_decodes_to_the_payload():
    inv = invoice(InvoiceKind.digital_special)
    text = decode_pdf_qr(render_invoice_pdf(inv))
    assert text == invoice_qr_payload(inv) and text.startswith("01,31,,26440670700000000123,")


def test_one_title_in_html_and_pdf(tmp_path):
    inv = invoice(InvoiceKind.digital_normal)
    html = DocumentStore(tmp_path).render_html(inv)
    title = invoice_title(inv.kind)
    assert title == "电子发票（普通发票）"
    assert f"<h1>{title}</h1>" in html and "数电票（" not in html
    text = "".join(pdfium.PdfDocument(render_invoice_pdf(inv))[0].get_textpage().get_text_range().split())
    assert title in text
