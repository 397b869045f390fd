"""The invoice PDF: Chinese text that can be extracted, the font embedded, the simplified-Chinese glyphs drawn (not
the Traditional ones the bundled TC font defaults to), rare name characters on the same path as any other, a QR
code that decodes, the 数电票 layout, and nothing written to a cache under the home directory."""

import io
import os
import random
import struct
import subprocess
import sys
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pypdfium2 as pdfium
import zxingcpp
from pypdf import PdfReader

from fapiao.adapters.pdf import FONT_FILE, qr_text, render_invoice_pdf
from tests.support.pdf import extracted, invoice, RARE

ROOT = Path(__file__).resolve().parents[2]

# Characters that stand on invoices and whose zh-Hans glyph differs from the zh-Hant one in Noto Sans CJK, with
# each glyph's (contours, points, xMin, yMin, xMax, yMax) as TrueType outlines: the first from the source font's
# own `locl` substitution for language ZHS (simplified), the second its default (TC) glyph. Made from
# cvttf-notosanscjk-regular 1.0 with tools/build_cjk_font.py's locl_mapping and the same cu2qu conversion.
SC_TC = {
    "票": ((9, 74, 48, -78, 946, 797), (9, 60, 48, -79, 946, 797)),
    "通": ((7, 108, 42, -66, 965, 804), (7, 121, 35, -81, 968, 831)),
    "名": ((2, 51, 50, -76, 847, 840), (3, 54, 50, -76, 847, 840)),
    "伍": ((3, 54, 27, -77, 957, 834), (3, 46, 20, -76, 963, 831)),
    "柒": ((5, 91, 41, -76, 959, 835), (7, 91, 37, -76, 950, 834)),
    "捌": ((6, 111, 42, -80, 925, 837), (5, 111, 31, -77, 924, 837)),
    "角": ((6, 77, 61, -85, 872, 839), (6, 76, 37, -81, 867, 839)),
    "分": ((2, 67, 47, -80, 957, 819), (3, 67, 39, -82, 966, 819)),
    "零": ((7, 98, 39, -85, 967, 797), (6, 117, 43, -81, 962, 797)),
    "非": ((2, 32, 60, -77, 954, 832), (2, 48, 55, -88, 954, 831)),
}


def _tables(font: bytes) -> dict[bytes, bytes]:
    count = struct.unpack_from(">H", font, 4)[0]
    out = {}
    for i in range(count):
        tag, _, offset, length = struct.unpack_from(">4sIII", font, 12 + 16 * i)
        out[tag] = font[offset : offset + length]
    return out


def _glyph_signature(tables: dict[bytes, bytes], gid: int) -> tuple[int, ...]:
    """(contours, points, xMin, yMin, xMax, yMax) of a simple TrueType glyph; () for an empty one."""
    long_loca = struct.unpack_from(">h", tables[b"head"], 50)[0] == 1
    loca = tables[b"loca"]
    if long_loca:
        start, end = struct.unpack_from(">II", loca, 4 * gid)
    else:
        start, end = (2 * v for v in struct.unpack_from(">HH", loca, 2 * gid))
    if start == end:
        return ()
    glyf = tables[b"glyf"]
    contours, x0, y0, x1, y1 = struct.unpack_from(">hhhhh", glyf, start)
    points = struct.unpack_from(">H", glyf, start + 10 + 2 * (contours - 1))[0] + 1 if contours > 0 else 0
    return (contours, points, x0, y0, x1, y1)


def drawn_glyphs(pdf: bytes) -> dict[str, tuple[int, ...]]:
    """Character → signature of the glyph the PDF's embedded font draws for it (via each subset's ToUnicode map
    and its own code → glyph cmap)."""
    out = {}
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            data = font["/FontDescriptor"].get_object()["/FontFile2"].get_object().get_data()
            tables = _tables(data)
            cmap = tables[b"cmap"]
            code_to_gid = {}
            for i in range(struct.unpack_from(">H", cmap, 2)[0]):
                platform, encoding, offset = struct.unpack_from(">HHI", cmap, 4 + 8 * i)
                fmt = struct.unpack_from(">H", cmap, offset)[0]
                if fmt == 6:
                    first, n = struct.unpack_from(">HH", cmap, offset + 6)
                    gids = struct.unpack_from(f">{n}H", cmap, offset + 10)
                    code_to_gid.update({first + k: g for k, g in enumerate(gids)})
                elif fmt == 0:
                    code_to_gid.update(enumerate(cmap[offset + 6 : offset + 262]))
            to_unicode = font["/ToUnicode"].get_object().get_data().decode()
            for line in to_unicode.splitlines():
                parts = line.strip().split()
                if len(parts) == 2 and parts[0].startswith("<") and parts[1].startswith("<"):
                    code, uni = int(parts[0][1:-1], 16), int(parts[1][1:-1], 16)
                    if uni and code in code_to_gid:
                        out[chr(uni)] = _glyph_signature(tables, code_to_gid[code])
    return out


def test_pdf_text_is_extractable():
    text = extracted(render_invoice_pdf(invoice()))
    for expected in (
        "电子发票（普通发票）",
        "26440670700000000123",
        "某某科技有限公司",
        "深圳市示例科技有限公司",
        "*文化办公用设备*打印机",
        "壹仟贰佰叁拾圆整",
        "¥1230.00",
        "2026年11月22日",
        "91440300358768292H",
    ):
        assert expected in text, (expected, text)


def test_every_font_is_embedded():
    reader = PdfReader(io.BytesIO(render_invoice_pdf(invoice())))
    fonts = [f.get_object() for f in reader.pages[0]["/Resources"]["/Font"].values()]
    assert fonts
    for font in fonts:
        assert "/FontFile2" in font["/FontDescriptor"].get_object(), font["/BaseFont"]


def test_renders_real_glyphs():
    page = pdfium.PdfDocument(render_invoice_pdf(invoice()))[0]
    image = page.render(scale=2).to_pil().convert("L")
    w, h = image.size
    title = image.crop((int(w * 0.25), 0, int(w * 0.8), int(h * 0.15)))
    dark = sum(title.histogram()[:128])
    assert dark > 800, dark  # the title's strokes, not empty boxes or nothing


def test_simplified_glyphs_are_drawn():
    """Issue #11 point 3: the TC font's default shapes printed a third of the GB 2312 hanzi in Traditional forms."""
    pdf = render_invoice_pdf(invoice(remark="".join(SC_TC)))
    drawn = drawn_glyphs(pdf)
    for ch, (sc, tc) in SC_TC.items():
        assert drawn[ch] == sc, (ch, drawn[ch], sc, tc)
        assert drawn[ch] != tc


def test_rare_name_characters_are_real_glyphs():
    pdf = render_invoice_pdf(invoice(title=f"王{RARE}"))
    assert f"王{RARE}" in extracted(pdf)
    drawn = drawn_glyphs(pdf)
    for ch in RARE:
        assert drawn[ch] and drawn[ch][0] > 0, ch  # outlines, not the empty .notdef


def test_qr_decodes_to_the_verification_string():
    inv = invoice()
    image = pdfium.PdfDocument(render_invoice_pdf(inv))[0].render(scale=2).to_pil()
    found = [b.text for b in zxingcpp.read_barcodes(image)]
    assert found == [qr_text(inv)]
    assert qr_text(inv) == "01,32,,26440670700000000123,1094.34,20261122,,CE88"  # FACTS §3.1 (issue #15)


def test_qr_with_its_fixed_mask_decodes_for_many_invoices():
    """The QR is drawn with one fixed mask (not the best-scoring one) for speed: it must decode whatever the
    number, amount and date, at the size the PDF prints it."""
    rng = random.Random(11)
    for i in range(40):
        inv = invoice(
            number=f"{rng.randrange(10**19, 10**20)}",
            total_amount=Decimal(rng.randrange(1, 10**9)) / 100,
            issued_at=datetime(2026, rng.randrange(1, 13), rng.randrange(1, 29), tzinfo=timezone.utc),
        )
        image = pdfium.PdfDocument(render_invoice_pdf(inv))[0].render(scale=2).to_pil()
        assert [b.text for b in zxingcpp.read_barcodes(image)] == [qr_text(inv)], qr_text(inv)


def _box(page, text: str) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) in mm from the page's top-left corner of the first occurrence of ``text``."""
    tp = page.get_textpage()
    found = tp.search(text).get_next()
    assert found, text
    index, count = found
    boxes = [tp.get_charbox(i) for i in range(index, index + count)]
    height = page.get_height()
    pt = 72 / 25.4
    return (
        min(b[0] for b in boxes) / pt,
        (height - max(b[3] for b in boxes)) / pt,
        max(b[2] for b in boxes) / pt,
        (height - min(b[1] for b in boxes)) / pt,
    )


def test_layout_of_a_digital_invoice():
    """240 × 148 mm landscape; the title centred over the page, number and date top right, buyer left of the
    seller, the 价税合计 line with the figure at the right edge (where today's layout puts them)."""
    page = pdfium.PdfDocument(render_invoice_pdf(invoice()))[0]
    assert round(page.get_width() / 72 * 25.4) == 240 and round(page.get_height() / 72 * 25.4) == 148
    left, top, right, _ = _box(page, "电子发票（普通发票）")
    assert abs((left + right) / 2 - 120) < 2 and top < 16
    left, top, _, _ = _box(page, "发票号码")
    assert 172 <= left <= 176 and top < 15
    buyer, seller = _box(page, "购买方信息"), _box(page, "销售方信息")
    assert buyer[0] < 20 and 120 < seller[0] < 130 and abs(buyer[1] - seller[1]) < 1
    _, _, right, _ = _box(page, "¥1230.00")
    assert 226 < right < 230


def test_many_lines_flow_onto_a_second_page():
    inv = invoice()
    lines = [
        inv.lines[0].model_copy(update={"line_no": i + 1, "goods_name": f"*文化办公用设备*第{i + 1}号"})
        for i in range(20)
    ]
    pdf = render_invoice_pdf(inv.model_copy(update={"lines": lines}))
    assert len(pdfium.PdfDocument(pdf)) == 2
    text = extracted(pdf)
    assert all(f"第{i + 1}号" in text for i in range(20)) and "壹仟贰佰叁拾圆整" in text


def test_same_invoice_same_bytes():
    """Re-rendering after a crash writes the very same file."""
    assert render_invoice_pdf(invoice()) == render_invoice_pdf(invoice())


def test_no_cache_under_a_missing_home(tmp_path):
    """Issue #13: the container user has no home directory. Rendering writes nothing outside its documents."""
    home, cache = tmp_path / "no-such-home", tmp_path / "xdg-cache"
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(cache), PYTHONPATH=str(ROOT))
    code = (
        "from tests.support.pdf import invoice, RARE; from fapiao.adapters.pdf import render_invoice_pdf; "
        "import sys; sys.stdout.buffer.write(render_invoice_pdf(invoice(title='王' + RARE))[:5])"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == b"%PDF-"
    assert not home.exists() and not cache.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_font_ships_once_with_its_licence():
    assert FONT_FILE.is_file() and (FONT_FILE.parent / "OFL.txt").is_file()
    assert "SIL OPEN FONT LICENSE Version 1.1" in (FONT_FILE.parent / "OFL.txt").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert "fonts/*.ttf" in pyproject and "cvttf" not in pyproject  # one copy: ours, not a font wheel's two
