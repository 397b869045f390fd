"""The invoice PDF: Chinese text that can be extracted, an embedded font, and real glyphs when rendered."""

from datetime import datetime, timezone

import pypdfium2 as pdfium
from pypdf import PdfReader

from fapiao.adapters.pdf import render_invoice_pdf
from fapiao.domain.invoice import build_invoice
from fapiao.domain.order_rules import check_bill
from schemas.bill_push import Bill
from schemas.events import Buyer, BuyerType
from tests.test_order_rules import CTX, bill


def invoice(title="某某科技有限公司"):
    order = check_bill(Bill.model_validate(bill()), CTX)
    buyer = Buyer(buyer_type=BuyerType.enterprise, title=title, tax_id="91440300358768292H", email="a@b.cn")
    return build_invoice(order, buyer, "26440670700000000123", datetime(2026, 11, 22, 9, 30, tzinfo=timezone.utc))


def extracted(pdf: bytes) -> str:
    """The page's text as PDFium extracts it, white space removed (pypdf reads this ToUnicode map with a NUL
    before each character; PDFium, what Chrome uses, reads it cleanly)."""
    text = pdfium.PdfDocument(pdf)[0].get_textpage().get_text_range()
    return "".join(text.split())


def test_pdf_text_is_extractable():
    text = extracted(render_invoice_pdf(invoice()))
    for expected in ("电子发票（普通发票）", "26440670700000000123", "某某科技有限公司", "深圳市示例科技有限公司",
                     "*文化办公用设备*打印机", "壹仟贰佰叁拾圆整", "¥1230.00", "2026年11月22日", "91440300358768292H"):
        assert expected in text, (expected, text)


def test_font_is_embedded():
    import io

    reader = PdfReader(io.BytesIO(render_invoice_pdf(invoice())))
    fonts = [f for f in reader.pages[0]["/Resources"]["/Font"].values()]
    descendants = [d.get_object() for f in fonts for d in f.get_object().get("/DescendantFonts", [])]
    descriptor = descendants[0]["/FontDescriptor"].get_object()
    assert any(k in descriptor for k in ("/FontFile2", "/FontFile3"))


def test_renders_real_glyphs():
    page = pdfium.PdfDocument(render_invoice_pdf(invoice()))[0]
    image = page.render(scale=2).to_pil().convert("L")
    w, h = image.size
    title = image.crop((int(w * 0.25), 0, int(w * 0.8), int(h * 0.15)))
    dark = sum(title.histogram()[:128])
    assert dark > 800, dark  # the title's strokes, not empty boxes or nothing


def test_rare_character_uses_the_full_font():
    text = extracted(render_invoice_pdf(invoice(title="王䶮")))  # 䶮 is outside GB 2312
    assert "王䶮" in text
