"""Money is Decimal, rounded ROUND_HALF_UP to 2 places; and the Chinese capital numerals (大写) of an amount."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("999999999999.99")  # at most 12 integer digits (FACTS §3)


def round2(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def parse_decimal(text: str | None) -> Decimal | None:
    """A decimal from pushed text, or None when absent or not a finite number."""
    if text is None or not str(text).strip():
        return None
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def has_at_most_two_places(value: Decimal) -> bool:
    try:
        return value == value.quantize(CENT)
    except InvalidOperation:  # too many digits to quantize (1e30): not an amount either
        return False


_AMOUNT = re.compile(r"^\d{1,12}(\.\d{1,2})?$")


def parse_amount(text: str | None) -> Decimal | None:
    """An amount a person or a link gives (``88.50``, ``88.5``, ``88``): more than zero, at most 12 integer digits
    and 2 decimals, plain digits only (no exponent, sign, NaN or full-width digits). None otherwise (00613)."""
    raw = str(text or "").strip()
    if not _AMOUNT.match(raw) or not raw.isascii():
        return None
    value = Decimal(raw)
    return value if value > 0 else None


_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL_UNITS = ["", "拾", "佰", "仟"]
_BIG_UNITS = ["", "万", "亿", "万亿"]


def _four_digits(n: int) -> str:
    out, zero = "", False
    for pos in range(3, -1, -1):
        d = (n // 10**pos) % 10
        if d == 0:
            zero = bool(out)
        else:
            if zero:
                out += "零"
                zero = False
            out += _DIGITS[d] + _SMALL_UNITS[pos]
    return out


def to_chinese_upper(amount: Decimal) -> str:
    """价税合计（大写）: 1130.00 -> 壹仟壹佰叁拾圆整, 100.05 -> 壹佰圆零伍分, negative -> (负数)..."""
    amount = round2(amount)
    prefix = "（负数）" if amount < 0 else ""
    amount = abs(amount)
    cents = int((amount * 100).to_integral_value())
    yuan, jiao, fen = cents // 100, (cents // 10) % 10, cents % 10
    if yuan == 0 and jiao == 0 and fen == 0:
        return "零圆整"
    groups, n = [], yuan
    while n:
        groups.append(n % 10000)
        n //= 10000
    text, need_zero = "", False
    for idx in range(len(groups) - 1, -1, -1):
        g = groups[idx]
        if g == 0:
            need_zero = bool(text)
            continue
        if text and (need_zero or g < 1000):
            text += "零"
        text += _four_digits(g) + _BIG_UNITS[idx]
        need_zero = False
    if text:
        text += "圆"
    if jiao == 0 and fen == 0:
        return prefix + text + "整"
    if jiao:
        text += _DIGITS[jiao] + "角"
    elif text:
        text += "零"
    if fen:
        text += _DIGITS[fen] + "分"
    return prefix + text
