"""The invoice as a PDF laid out like a 数电票, with its Chinese glyphs embedded so it opens identically everywhere
and its text can be extracted.

Drawn with ReportLab: the font is parsed once per process (``cjk_font()``), and each document embeds only the
glyphs it uses, cut from the parsed font in memory (a few ms: no font subsetting library runs per document, no
file is written, nothing is cached on disk). The font is fapiao's own build of Noto Sans CJK with the
simplified-Chinese (zh-Hans) glyphs and TrueType outlines (fapiao/fonts, built by tools/build_cjk_font.py), and
it covers every CJK ideograph Noto has, so a name such as 王喆 or 李玥 costs what any other name costs.

The QR code is drawn as vector squares, so it stays sharp at any zoom.
"""

from __future__ import annotations

import io
import zlib
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import segno
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from fapiao.domain.buyer import BUYER_TYPE_LABELS
from fapiao.domain.invoice import invoice_qr_payload, invoice_title
from schemas.events import Invoice

FONT_FILE = Path(__file__).resolve().parents[1] / "fonts" / "NotoSansCJKsc-Regular.ttf"
FONT = "NotoSansCJKsc"
BROWN = (139 / 255, 69 / 255, 19 / 255)
ZERO_RATE = {"1": "免税", "2": "不征税", "3": "0%"}
PAGE_W, PAGE_H = 240, 148  # mm, landscape
BOTTOM = 8  # mm kept free at the foot of a page
PAD = 1  # mm between a cell's edge and its text


# Choosing the mask by the standard's penalty score evaluates all eight and was ~40% of a document's CPU; mask 2 is
# the one that scoring picks for about half of all 数电 payloads (01,kind,,number,amount,date,,check), and every mask
# decodes (tests/unit/test_pdf.py decodes the QR of many random payloads drawn this way).
QR_MASK = 2


@lru_cache(maxsize=1)
def cjk_font() -> TTFont:
    """The CJK font, parsed and registered with ReportLab once per process (~0.5 s); later calls are free."""
    font = TTFont(FONT, str(FONT_FILE))
    # ReportLab cuts each document's glyphs out of a copy of the whole glyf table (~12 MB here, ~15% of a
    # document's time); a view of the parsed font's bytes gives the same slices without the copy.
    face = font.face
    glyf = _Slices(memoryview(face._ttf_data), *face.get_table_pos("glyf"))
    get_table = face.get_table
    face.get_table = lambda tag: glyf if tag == "glyf" else get_table(tag)
    # The subset's outlines (~32 KB) were a quarter of a document's time in zlib at its default level 6; level 1
    # takes 0.41 ms instead of 0.73 for ~4% more bytes. Only this font's stream: ReportLab's own filter stays.
    add_subset = face.addSubsetObjects

    def add_subset_fast(doc, fontname, subset):
        ref = add_subset(doc, fontname, subset)
        stream = doc.idToObject.get(f"fontFile:{face.filename}({fontname})")
        if stream is not None and stream.filters:
            stream.filters = [_FAST_FLATE]
        return ref

    face.addSubsetObjects = add_subset_fast
    pdfmetrics.registerFont(font)
    return font


class _FastFlate:
    """A FlateDecode stream filter at zlib level 1 (ReportLab's ``PDFZCompress`` uses the default, 6)."""

    pdfname = "FlateDecode"

    def encode(self, data: bytes | str) -> bytes:
        return zlib.compress(data.encode("utf-8") if isinstance(data, str) else data, 1)


_FAST_FLATE = _FastFlate()


class _Slices:
    """A font table read by slices (all ReportLab's subsetter does with glyf), each slice copied out alone."""

    def __init__(self, data: memoryview, pos: int, length: int):
        self.data = data[pos : pos + length]

    def __getitem__(self, key: slice) -> bytes:
        return self.data[key].tobytes()


def qr_text(inv: Invoice) -> str:
    """What the invoice's QR code says (the 数电票 verification string)."""
    return invoice_qr_payload(inv)


def _money(v: Decimal | None) -> str:
    return "" if v is None else f"{v:.2f}"


def _rate(line) -> str:
    if line.tax_rate == 0:
        return ZERO_RATE.get(line.zero_rate_flag or "", "0%")
    return f"{(line.tax_rate * 100).normalize():f}%"


class _Page:
    """A cursor over the canvas in millimetres from the top-left corner, the way the layout is written."""

    def __init__(self, canvas: Canvas, font: TTFont):
        self.c, self.font, self.size, self.y = canvas, font, 9.0, 10.0
        self._style()

    def _style(self) -> None:
        self.c.setFillColorRGB(*BROWN)
        self.c.setStrokeColorRGB(*BROWN)
        self.c.setLineWidth(0.2 * mm)

    def set_size(self, size: float) -> None:
        self.size = size
        self.c.setFont(FONT, size)

    def need(self, h: float) -> None:
        """Start a new page when ``h`` mm do not fit on this one."""
        if self.y + h > PAGE_H - BOTTOM:
            self.c.showPage()
            self._style()
            self.c.setFont(FONT, self.size)
            self.y = 10.0

    def width(self, text: str, size: float | None = None) -> float:
        return self.font.stringWidth(text, size or self.size) / mm

    def text(self, x: float, y: float, w: float, h: float, text: str, align: str = "L") -> None:
        """``text`` in the cell (x, y, w, h): vertically centred, shrunk to fit the width when it is too long."""
        if not text:
            return
        size = self.size
        room = w - 2 * PAD
        width = self.width(text)
        if width > room > 0:
            size = max(4.0, size * room / width)
            width = self.width(text, size)
        base = (PAGE_H - (y + h / 2 + 0.3 * size * 25.4 / 72)) * mm
        if align == "C":
            left = x + (w - width) / 2
        elif align == "R":
            left = x + w - PAD - width
        else:
            left = x + PAD
        if size != self.size:
            self.c.setFont(FONT, size)
            self.c.drawString(left * mm, base, text)
            self.c.setFont(FONT, self.size)
        else:
            self.c.drawString(left * mm, base, text)

    def wrap(self, text: str, w: float) -> list[str]:
        """``text`` broken into lines that fit ``w`` mm (at any character: CJK text has no spaces)."""
        room, lines = w - 2 * PAD, []
        for para in text.split("\n"):
            line, used = "", 0.0
            for ch in para:
                cw = self.width(ch)
                if line and used + cw > room:
                    lines.append(line)
                    line, used = "", 0.0
                line, used = line + ch, used + cw
            lines.append(line)
        return lines

    def line(self, x1: float, y1: float, x2: float, y2: float) -> None:
        self.c.line(x1 * mm, (PAGE_H - y1) * mm, x2 * mm, (PAGE_H - y2) * mm)

    def rect(self, x: float, y: float, w: float, h: float) -> None:
        self.c.rect(x * mm, (PAGE_H - y - h) * mm, w * mm, h * mm, stroke=1, fill=0)

    def qr(self, data: str, x: float, y: float, size: float) -> None:
        """The QR code as filled squares (2 modules of quiet zone inside ``size``), one path, black. The path is
        written in module units under one scaling transform (a run of dark modules in a row is one ``re``), as
        literal PDF operators: building it through ReportLab's path object cost more than the rest of the page."""
        code = segno.make(data, error="m", mask=QR_MASK, micro=False)
        border = 2
        n = code.symbol_size(border=border)[0]
        unit = size / n * mm
        ops = []
        for r, row in enumerate(code.matrix):
            c, width = 0, len(row)
            while c < width:
                if row[c] & 1:
                    start = c
                    while c < width and row[c] & 1:
                        c += 1
                    ops.append(f"{start + border} {n - 1 - r - border} {c - start} 1 re")
                else:
                    c += 1
        self.c.saveState()
        self.c.setFillColorRGB(0, 0, 0)
        # module (0, 0) at the bottom-left of the symbol's box, y growing upwards as PDF's does
        self.c.transform(unit, 0, 0, unit, x * mm, (PAGE_H - y - size) * mm)
        self.c.addLiteral("\n".join(ops) + "\nf")
        self.c.restoreState()


def render_invoice_pdf(inv: Invoice) -> bytes:
    """The invoice's PDF (one page, more when it has many lines). Pure: the same invoice gives the same bytes."""
    font = cjk_font()
    buf = io.BytesIO()
    canvas = Canvas(
        buf,
        pagesize=(PAGE_W * mm, PAGE_H * mm),
        invariant=1,
        pageCompression=1,
        initialFontName=FONT,
        initialFontSize=9,
    )
    canvas.setTitle(f"{invoice_title(inv.kind)} {inv.number}")
    canvas.setAuthor(inv.seller_name)
    p = _Page(canvas, font)

    p.qr(qr_text(inv), 10, 8, 22)
    p.set_size(17)
    p.text(40, 10, 160, 10, invoice_title(inv.kind), "C")
    p.set_size(9)
    p.text(172, 10, 62, 5, f"发票号码：{inv.number}")
    p.text(172, 15, 62, 5, f"开票日期：{inv.issued_at:%Y年%m月%d日}")

    top, half = 34, 110
    p.set_size(8)
    parties = []
    for label, name, tax_id, extra in (
        ("购买方信息", inv.buyer.title, inv.buyer.tax_id or "", BUYER_TYPE_LABELS[inv.buyer.buyer_type]),
        ("销售方信息", inv.seller_name, inv.seller_tax_id, ""),
    ):
        text = f"{label}\n名称：{name}\n统一社会信用代码/纳税人识别号：{tax_id}" + (f"\n类型：{extra}" if extra else "")
        parties.append(p.wrap(text, half - 4))
    box = max(24, 4 + 5 * max(len(lines) for lines in parties))
    p.rect(10, top, 220, box)
    p.line(10 + half, top, 10 + half, top + box)
    for x, lines in zip((10, 10 + half), parties):
        for i, text in enumerate(lines):
            p.text(x + 2, top + 2 + 5 * i, half - 4, 5, text)

    cols = [
        ("项目名称", 58, "L"),
        ("规格型号", 24, "L"),
        ("单位", 12, "C"),
        ("数量", 18, "R"),
        ("单价", 26, "R"),
        ("金额", 28, "R"),
        ("税率/征收率", 26, "R"),
        ("税额", 28, "R"),
    ]
    p.y = top + box + 2
    x = 10
    for title, w, _ in cols:
        p.text(x, p.y, w, 6, title, "C")
        x += w
    p.line(10, p.y + 6, 230, p.y + 6)
    p.y += 6
    for line in inv.lines:
        p.need(6)
        values = [
            line.goods_name,
            line.specification or "",
            line.units or "",
            "" if line.quantity is None else f"{line.quantity.normalize():f}",
            "" if line.price is None else f"{line.price:f}",
            _money(line.amount),
            _rate(line),
            _money(line.tax_amount),
        ]
        x = 10
        for (_, w, align), value in zip(cols, values):
            p.text(x, p.y, w, 6, value, align)
            x += w
        p.y += 6

    p.need(6 + 2 + 7 + 2 + 5 + 8)
    p.line(10, p.y, 230, p.y)
    lead = sum(w for _, w, _ in cols[:5])
    p.text(10, p.y, lead, 6, "合  计", "C")
    p.text(10 + lead, p.y, cols[5][1], 6, f"¥{_money(inv.total_amount)}", "R")
    p.text(10 + lead + cols[5][1] + cols[6][1], p.y, cols[7][1], 6, f"¥{_money(inv.total_tax)}", "R")
    p.y += 8

    p.set_size(9)
    p.rect(10, p.y, 150, 7)
    p.rect(160, p.y, 70, 7)
    p.text(10, p.y, 150, 7, f"价税合计（大写）  {inv.total_with_tax_upper}")
    p.text(160, p.y, 70, 7, f"（小写）¥{_money(inv.total_with_tax)}", "R")
    p.y += 9

    p.set_size(8)
    remark = p.wrap(f"备注：订单号 {inv.bill_no}  {inv.remark or ''}".rstrip(), 220)
    p.need(5 * len(remark) + 8)
    p.rect(10, p.y, 220, 5 * len(remark))
    for text in remark:
        p.text(10, p.y, 220, 5, text)
        p.y += 5
    p.text(10, p.y, 220, 8, f"开票人：{inv.drawer or ''}")
    canvas.showPage()
    canvas.save()
    return buf.getvalue()
