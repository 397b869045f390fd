"""Issue #15 point 5, seed 000 发票种类: 纸质专用发票, 纸质普通发票 and 增值税普通发票（卷票） end to end on one running
system (broker, workers, gateway): pushed, titled on the H5 page, issued with the pushed kind even when the form is
edited to ask for another ("仅可选择接口invoiceType传递票种，不支持切换票种"), rendered with that kind's title and QR."""

import time
import urllib.request

import pypdfium2 as pdfium
import pytest
import zxingcpp
from sqlalchemy import select

from fapiao.adapters.db import QrSettingRow
from fapiao.domain.invoice import invoice_title, qr_kind_code
from schemas.events import InvoiceKind
from tests.support.kafka import push
from tests.support.http import http

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

KINDS = [InvoiceKind.paper_special, InvoiceKind.paper_normal, InvoiceKind.roll]
ENTERPRISE = {
    "buyer_type": "enterprise",
    "title": "某某科技有限公司",
    "tax_id": "91440300358768292H",
    "email": "buyer@example.cn",
}


def test_paper_and_roll_kinds_end_to_end(system, sessions):  # noqa: F811
    s = system
    with sessions() as db:
        db.scalar(select(QrSettingRow)).kinds = sorted(k.value for k in InvoiceKind)
        db.commit()
    links = {kind: push(s, f"KIND-{kind.value}", invoiceType=kind.value) for kind in KINDS}

    status, page = http(links[InvoiceKind.paper_special], ENTERPRISE)
    assert status == 422 and "纸质专用发票必须填写地址电话" in page
    for kind, link in links.items():
        form = {**ENTERPRISE, "invoice_kind": InvoiceKind.digital_special.value}  # the hidden field, edited
        if kind == InvoiceKind.paper_special:
            form |= {"address_tel": "深圳市南山区 0755-12345678", "bank_account": "招商银行 755900001"}
        assert http(link, form)[0] == 303
    deadline = time.monotonic() + 90
    for kind, link in links.items():
        while '"issued"' not in http(f"{link}/status")[1]:
            assert time.monotonic() < deadline, f"{kind} not issued"
            time.sleep(0.5)
        status, html = http(f"{link}/invoice.html")
        assert status == 200 and f"<h1>{invoice_title(kind)}</h1>" in html, kind
        while '"documents": true' not in http(f"{link}/status")[1]:  # the render stage draws the PDF after issuing
            assert time.monotonic() < deadline, f"{kind}: no PDF"
            time.sleep(0.2)
        image = pdfium.PdfDocument(fetch_bytes(f"{link}/invoice.pdf"))[0].render(scale=3).to_pil()
        [qr] = [b.text for b in zxingcpp.read_barcodes(image)]
        assert qr.startswith(f"01,{qr_kind_code(kind)},,"), (kind, qr)
    assert qr_kind_code(InvoiceKind.paper_special) == "31" and qr_kind_code(InvoiceKind.roll) == "32"


def fetch_bytes(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()
