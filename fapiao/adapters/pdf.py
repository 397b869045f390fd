"""The invoice as a PDF laid out like a 数电票, with an embedded Chinese font so the text renders as real glyphs
everywhere and can be extracted.

The font is Noto Sans CJK (SIL OFL), installed from PyPI (``cvttf-notosanscjk-regular``: the one wheel there that
carries a plain static CJK OpenType file). Loading the 16 MB font costs ~0.3 s per document, so on first use it is
cut once to the GB 2312 characters plus ASCII and common punctuation (~1.6 MB, kept in the user's cache folder);
a document with a character outside that set uses the full font.
"""

from __future__ import annotations

import importlib.util
import io
import os
import tempfile
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from fpdf import FPDF

from fapiao.adapters.qr import qr_png
from fapiao.domain.buyer import BUYER_TYPE_LABELS
from fapiao.domain.invoice import invoice_qr_payload, invoice_title
from schemas.events import Invoice

CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fapiao"
SUBSET_NAME = "NotoSansCJK-GB2312-v1.otf"
BROWN = (139, 69, 19)
ZERO_RATE = {"1": "免税", "2": "不征税", "3": "0%"}


def full_font() -> Path:
    spec = importlib.util.find_spec("cvttf_NotoSansCJK_Regular")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the Chinese font package cvttf-notosanscjk-regular is not installed")
    return Path(spec.submodule_search_locations[0]) / "NotoSansCJKtc-Regular.otf"


@lru_cache(maxsize=1)
def subset_chars() -> frozenset[str]:
    chars = {chr(c) for c in range(0x20, 0x7F)}
    for hi in range(0xA1, 0xF8):
        for lo in range(0xA1, 0xFF):
            try:
                chars.add(bytes([hi, lo]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return frozenset(chars | set("￥¥×÷％（）【】《》“”‘’、，。：；？！—…·"))


def subset_font() -> Path:
    path = CACHE_DIR / SUBSET_NAME
    if path.exists():
        return path
    from fontTools import subset

    path.parent.mkdir(parents=True, exist_ok=True)
    opts = subset.Options()
    opts.name_IDs, opts.notdef_outline, opts.layout_features, opts.hinting = ["*"], True, [], False
    font = subset.load_font(str(full_font()), opts)
    subsetter = subset.Subsetter(opts)
    subsetter.populate(text="".join(sorted(subset_chars())))
    subsetter.subset(font)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".otf")
    os.close(fd)
    subset.save_font(font, tmp, opts)
    os.replace(tmp, path)  # concurrent first uses each write a whole file; the last rename wins
    return path


def _font_for(text: str) -> Path:
    return subset_font() if set(text) <= subset_chars() else full_font()


def _money(v: Decimal | None) -> str:
    return "" if v is None else f"{v:.2f}"


def _rate(line) -> str:
    if line.tax_rate == 0:
        return ZERO_RATE.get(line.zero_rate_flag or "", "0%")
    return f"{(line.tax_rate * 100).normalize():f}%"


def render_invoice_pdf(inv: Invoice) -> bytes:
    texts = [inv.seller_name, inv.buyer.title, inv.remark or "", inv.drawer or "",
             *(l.goods_name + (l.specification or "") + (l.units or "") for l in inv.lines)]
    pdf = FPDF(orientation="L", unit="mm", format=(148, 240))
    pdf.set_auto_page_break(True, margin=8)
    pdf.add_page()
    pdf.add_font("cjk", fname=str(_font_for("".join(texts))))
    pdf.set_text_color(*BROWN)
    pdf.set_draw_color(*BROWN)

    qr = invoice_qr_payload(inv)
    pdf.image(io.BytesIO(qr_png(qr, scale=3)), x=10, y=8, w=22, h=22)
    pdf.set_font("cjk", size=17)
    pdf.set_xy(40, 10)
    pdf.cell(160, 10, invoice_title(inv.kind), align="C")
    pdf.set_font("cjk", size=9)
    pdf.set_xy(172, 10)
    pdf.multi_cell(62, 5, f"发票号码：{inv.number}\n开票日期：{inv.issued_at:%Y年%m月%d日}", align="L")

    top, half = 34, 110
    pdf.rect(10, top, 220, 24)
    pdf.line(10 + half, top, 10 + half, top + 24)
    for x, label, name, tax_id, extra in (
        (10, "购买方信息", inv.buyer.title, inv.buyer.tax_id or "", BUYER_TYPE_LABELS[inv.buyer.buyer_type]),
        (10 + half, "销售方信息", inv.seller_name, inv.seller_tax_id, ""),
    ):
        pdf.set_xy(x + 2, top + 2)
        pdf.set_font("cjk", size=8)
        pdf.multi_cell(half - 4, 5, f"{label}\n名称：{name}\n统一社会信用代码/纳税人识别号：{tax_id}"
                       + (f"\n类型：{extra}" if extra else ""))

    cols = [("项目名称", 58, "L"), ("规格型号", 24, "L"), ("单位", 12, "C"), ("数量", 18, "R"),
            ("单价", 26, "R"), ("金额", 28, "R"), ("税率/征收率", 26, "R"), ("税额", 28, "R")]
    pdf.set_xy(10, top + 26)
    pdf.set_font("cjk", size=8)
    for title, w, _ in cols:
        pdf.cell(w, 6, title, border="B", align="C")
    pdf.ln()
    for line in inv.lines:
        values = [line.goods_name, line.specification or "", line.units or "",
                  "" if line.quantity is None else f"{line.quantity.normalize():f}",
                  "" if line.price is None else f"{line.price:f}", _money(line.amount), _rate(line),
                  _money(line.tax_amount)]
        pdf.set_x(10)
        for (title, w, align), value in zip(cols, values):
            pdf.cell(w, 6, value, align=align)
        pdf.ln()
    pdf.set_x(10)
    pdf.cell(sum(w for _, w, _ in cols[:5]), 6, "合  计", border="T", align="C")
    pdf.cell(cols[5][1], 6, f"¥{_money(inv.total_amount)}", border="T", align="R")
    pdf.cell(cols[6][1], 6, "", border="T")
    pdf.cell(cols[7][1], 6, f"¥{_money(inv.total_tax)}", border="T", align="R")
    pdf.ln(8)
    pdf.set_x(10)
    pdf.set_font("cjk", size=9)
    pdf.cell(150, 7, f"价税合计（大写）  {inv.total_with_tax_upper}", border=1)
    pdf.cell(70, 7, f"（小写）¥{_money(inv.total_with_tax)}", border=1, align="R")
    pdf.ln(9)
    pdf.set_x(10)
    pdf.set_font("cjk", size=8)
    pdf.multi_cell(220, 5, f"备注：订单号 {inv.bill_no}  {inv.remark or ''}", border=1)
    pdf.set_x(10)
    pdf.cell(220, 8, f"开票人：{inv.drawer or ''}")
    return bytes(pdf.output())
