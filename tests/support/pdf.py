"""An invoice to render and the text a PDF reader extracts from it."""

from __future__ import annotations

from datetime import datetime, timezone

import pypdfium2 as pdfium

from fapiao.domain.invoice import build_invoice
from fapiao.domain.order_rules import check_bill
from schemas.bill_push import Bill
from schemas.events import Buyer, BuyerType
from tests.support.samples import CTX, bill

RARE = "喆堃赟玥䶮"  # outside GB 2312 (䶮: CJK Extension A)


def invoice(title="某某科技有限公司", **changes):
    order = check_bill(Bill.model_validate(bill()), CTX)
    buyer = Buyer(buyer_type=BuyerType.enterprise, title=title, tax_id="91440300358768292H", email="a@b.cn")
    inv = build_invoice(order, buyer, "26440670700000000123", datetime(2026, 11, 22, 9, 30, tzinfo=timezone.utc))
    return inv.model_copy(update=changes) if changes else inv


def extracted(pdf: bytes) -> str:
    """All pages' text as PDFium (what Chrome uses) extracts it, white space removed."""
    doc = pdfium.PdfDocument(pdf)
    return "".join("".join(page.get_textpage().get_text_range().split()) for page in doc)
