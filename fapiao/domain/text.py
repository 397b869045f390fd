"""Free text that ends up printed on an invoice or in a message: normalised (Unicode NFC, trimmed) and refused when
it carries characters a person cannot see or that change what is shown: control characters (CR, LF, NUL, ...),
bidi overrides, isolates and marks (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C) and zero-width
characters (U+200B–U+200D, U+2060, U+FEFF). One rule for the buyer's form and for pushed orders."""

from __future__ import annotations

import re
import unicodedata

BIDI = frozenset(map(chr, [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C]))
ZERO_WIDTH = frozenset(map(chr, [0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF]))


class TextRefused(ValueError):
    """A text field holds a character it may not; ``field`` names it, ``message`` says why (Chinese)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# Control characters (Unicode category Cc: C0, DEL, C1), lone surrogates, bidi controls and zero-width characters,
# as one class so a search runs at C speed over a 1,000-line order.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff" + "".join(sorted(BIDI | ZERO_WIDTH)) + "]")


def forbidden_char(value: str) -> str | None:
    """The first character of ``value`` that may not appear in a text field, or None."""
    found = _FORBIDDEN.search(value)
    return found.group(0) if found else None


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be used as a text field (Chinese, with the character's code point), or None."""
    ch = forbidden_char(value)
    if ch is None:
        return None
    if ch in BIDI:
        kind = "文字方向控制字符"
    elif ch in ZERO_WIDTH:
        kind = "零宽字符"
    elif ch in "\r\n":
        kind = "换行符"
    else:
        kind = "控制字符"
    return f"不能包含{kind}（U+{ord(ch):04X}）"


def clean_text(value: str | None, field: str, max_length: int | None = None, label: str | None = None) -> str:
    """``value`` in NFC, trimmed; raises TextRefused naming ``field`` for a forbidden character or (when
    ``max_length`` is given) a value longer than that many characters. None becomes ''."""
    text = unicodedata.normalize("NFC", value or "").strip()
    problem = text_problem(text)
    if problem:
        raise TextRefused(field, f"{label or field}{problem}")
    if max_length is not None and len(text) > max_length:
        raise TextRefused(field, f"{label or field}不能超过{max_length}个字")
    return text
