"""VAT maths (价税分离) and the rates and tolerances of FACTS §3."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from fapiao.domain.money import round2

ALLOWED_RATES = frozenset(Decimal(r) for r in ("0.13", "0.09", "0.06", "0.05", "0.03", "0.015", "0.01", "0"))
ZERO_RATE_FLAGS = {"1": "免税", "2": "不征税", "3": "普通零税率"}
LINE_AMOUNT_TOLERANCE = Decimal("0.01")  # |qty × price − amount|
LINE_TAX_TOLERANCE = Decimal("0.06")  # |amount × rate − tax|; FAPIAO_LINE_TAX_TOLERANCE sets 0.01 for newer devices
INVOICE_TAX_TOLERANCE = Decimal("1.27")  # cumulative tax difference over an invoice


@dataclass(frozen=True)
class Split:
    amount: Decimal  # excluding tax
    tax: Decimal


def split_inclusive(total: Decimal, rate: Decimal) -> Split:
    """Tax-inclusive total -> amount + tax: amount = round2(total / (1 + r)), tax = total − amount."""
    total = round2(total)
    amount = round2(total / (Decimal(1) + rate))
    return Split(amount, total - amount)


def split_exclusive(amount: Decimal, rate: Decimal) -> Split:
    """Tax-exclusive amount -> amount + tax: tax = round2(amount × r)."""
    amount = round2(amount)
    return Split(amount, round2(amount * rate))


def split(value: Decimal, rate: Decimal, include_tax: bool) -> Split:
    return split_inclusive(value, rate) if include_tax else split_exclusive(value, rate)
