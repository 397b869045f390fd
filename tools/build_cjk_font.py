"""Build fapiao/fonts/NotoSansCJKsc-Regular.ttf, the one font the invoice PDF is drawn with.

Why a built file: the only static Noto Sans CJK on PyPI (``cvttf-notosanscjk-regular``) is the **TC** build with
CFF outlines. Drawn through its default cmap, a third of the GB 2312 hanzi (票 通 名 角 分 零 ...) print in their
Traditional-Chinese shapes, and CFF outlines cannot be embedded by ReportLab (the fast PDF library, see
fapiao/adapters/pdf.py). Doing the conversion at run time costs ~40 s of CPU per process, so it is done once here:

1. apply the font's own simplified-Chinese glyph mapping: the GSUB ``locl`` feature of language ``ZHS`` (script
   ``hani`` and the others), folded into the cmap, so each code point maps to the glyph Noto draws for zh-Hans
   (the same mapping Adobe's own Noto Sans CJK SC build has);
2. keep every code point of the font (all CJK Unified Ideographs with Extension A/B, so names such as 喆 堃 赟 玥
   print like any other), drop layout tables, hinting and vertical metrics the PDF does not use;
3. convert the cubic CFF outlines to quadratic TrueType ones (cu2qu, error ≤ 1 unit of 1000);
4. rename it (Noto Sans CJK SC) and save.

The font is licensed under the SIL Open Font License 1.1 (fapiao/fonts/OFL.txt); its only Reserved Font Name is
"Source", which the result does not use.

Run (needs the source font, which fapiao itself no longer installs)::

    pip install fonttools cvttf-notosanscjk-regular==1.0 && python tools/build_cjk_font.py
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from fontTools import subset
from fontTools.pens.cu2quPen import Cu2QuPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont, newTable

OUT = Path(__file__).resolve().parents[1] / "fapiao" / "fonts" / "NotoSansCJKsc-Regular.ttf"
LANGUAGE = "ZHS "  # OpenType language system tag of Simplified Chinese
FAMILY, STYLE, PS_NAME = "Noto Sans CJK SC", "Regular", "NotoSansCJKsc-Regular"


def source_font() -> Path:
    spec = importlib.util.find_spec("cvttf_NotoSansCJK_Regular")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("pip install fonttools cvttf-notosanscjk-regular==1.0 first (the source font)")
    return Path(spec.submodule_search_locations[0]) / "NotoSansCJKtc-Regular.otf"


def locl_mapping(font: TTFont, language: str = LANGUAGE) -> dict[str, str]:
    """glyph name → glyph name: the single substitutions of the ``locl`` feature for ``language``, every script."""
    gsub = font["GSUB"].table
    features = {
        i
        for sr in gsub.ScriptList.ScriptRecord
        for ls in sr.Script.LangSysRecord
        if ls.LangSysTag == language
        for i in ls.LangSys.FeatureIndex
        if gsub.FeatureList.FeatureRecord[i].FeatureTag == "locl"
    }
    mapping: dict[str, str] = {}
    for i in sorted(features):
        for index in gsub.FeatureList.FeatureRecord[i].Feature.LookupListIndex:
            lookup = gsub.LookupList.Lookup[index]
            for table in lookup.SubTable:
                table = table.ExtSubTable if lookup.LookupType == 7 else table
                if table.LookupType != 1:
                    raise ValueError(f"locl lookup {index} is of type {table.LookupType}, not a single substitution")
                mapping.update(table.mapping)
    return mapping


def simplified_cmap(font: TTFont) -> dict[int, str]:
    """The font's cmap with the zh-Hans ``locl`` substitutions applied (code point → glyph name)."""
    mapping = locl_mapping(font)
    return {cp: mapping.get(glyph, glyph) for cp, glyph in font.getBestCmap().items()}


def _to_truetype(font: TTFont) -> None:
    order = font.getGlyphOrder()
    glyph_set = font.getGlyphSet()
    glyphs = {}
    for name in order:
        pen = TTGlyphPen(None)
        glyph_set[name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
        glyphs[name] = pen.glyph()
    glyf = newTable("glyf")
    glyf.glyphOrder, glyf.glyphs = order, glyphs
    font["glyf"], font["loca"] = glyf, newTable("loca")
    del font["CFF "]
    maxp = font["maxp"]
    maxp.tableVersion = 0x00010000
    for attr in (
        "maxTwilightPoints",
        "maxStorage",
        "maxFunctionDefs",
        "maxInstructionDefs",
        "maxStackElements",
        "maxSizeOfInstructions",
        "maxComponentElements",
        "maxComponentDepth",
    ):
        setattr(maxp, attr, 0)
    maxp.maxZones = 1
    font["post"].formatType = 3.0  # no glyph names: they are CIDs anyway
    font["head"].glyphDataFormat = 0
    font.sfntVersion = "\x00\x01\x00\x00"


def _rename(font: TTFont, source_version: str) -> None:
    name = font["name"]
    for rec in list(name.names):
        if rec.nameID in (1, 3, 4, 5, 6, 16, 17):
            name.removeNames(nameID=rec.nameID)
    version = f"{source_version}; TrueType outlines, zh-Hans (locl ZHS) cmap, built by fapiao tools/build_cjk_font.py"
    for name_id, text in (
        (1, FAMILY),
        (2, STYLE),
        (3, f"{PS_NAME};fapiao"),
        (4, f"{FAMILY} {STYLE}"),
        (5, version),
        (6, PS_NAME),
    ):
        name.setName(text, name_id, 3, 1, 0x409)
        name.setName(text, name_id, 1, 0, 0)


def build(source: Path, out: Path = OUT) -> Path:
    font = TTFont(str(source))
    source_version = font["name"].getDebugName(5) or ""
    cmap = simplified_cmap(font)
    for table in font["cmap"].tables:  # each code point now names its zh-Hans glyph
        if table.isUnicode():
            table.cmap = {cp: cmap[cp] for cp in table.cmap if cp in cmap}
    opts = subset.Options()
    opts.layout_features, opts.hinting, opts.desubroutinize, opts.notdef_outline = [], False, True, True
    opts.name_IDs, opts.name_languages = ["*"], ["*"]
    opts.drop_tables += ["GSUB", "GPOS", "BASE", "DSIG", "VORG", "vhea", "vmtx"]
    subsetter = subset.Subsetter(opts)
    subsetter.populate(unicodes=cmap.keys())
    subsetter.subset(font)
    _to_truetype(font)
    _rename(font, source_version)
    out.parent.mkdir(parents=True, exist_ok=True)
    font.save(str(out))
    return out


if __name__ == "__main__":
    print("wrote", build(source_font()))
