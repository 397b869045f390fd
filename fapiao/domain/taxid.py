"""Taxpayer IDs: 统一社会信用代码 (GB 32100-2015) check character and 居民身份证 (GB 11643) check digit."""

from __future__ import annotations

import re
import unicodedata

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = [pow(3, i, 31) for i in range(17)]
ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
_LEGACY = re.compile(r"^[0-9A-Z]{15}$|^[0-9A-Z]{17}$|^[0-9A-Z]{20}$")


def normalise(raw: str) -> str:
    """Trim, full-width to half-width, upper case; drop inner spaces people type."""
    return unicodedata.normalize("NFKC", raw).strip().replace(" ", "").upper()


def uscc_check_char(first17: str) -> str:
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def tax_id_problem(raw: str) -> str | None:
    """None when ``raw`` is an acceptable taxpayer ID, else a Chinese sentence saying why not.

    18 characters must be a valid 统一社会信用代码; legacy IDs of 15, 17 or 20 characters are accepted by shape only.
    """
    value = normalise(raw)
    if len(value) == 18:
        if any(c not in USCC_ALPHABET for c in value):
            return "税号含有无效字符（统一社会信用代码不含 I、O、S、V、Z）"
        if not value[2:8].isdigit():  # positions 3-8: the administrative-region code (GB 32100)
            return "税号第3至8位应为行政区划代码（6位数字）"
        if uscc_check_char(value[:17]) != value[17]:
            return "税号校验位错误，请核对统一社会信用代码"
        return None
    if _LEGACY.match(value):
        return None
    return "税号应为15、17、18或20位字母数字"


def id_card_check_char(first17: str) -> str:
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS)) % 11]


def id_card_problem(raw: str) -> str | None:
    value = normalise(raw)
    if not re.fullmatch(r"\d{17}[\dX]", value):
        return "身份证号应为18位"
    if id_card_check_char(value[:17]) != value[17]:
        return "身份证号校验位错误"
    return None


def buyer_id_problem(raw: str, *, person: bool) -> str | None:
    """The buyer's 税号: a taxpayer ID, or for a 个人 buyer also a 居民身份证 number (GB 11643).

    An 18-digit value (last may be X) from a person is read as an ID card unless it is a valid USCC."""
    value = normalise(raw)
    if person and re.fullmatch(r"\d{17}[\dX]", value) and tax_id_problem(value) is not None:
        return id_card_problem(value)
    return tax_id_problem(value)
