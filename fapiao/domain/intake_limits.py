"""Size limits a pushed bill must stay within before any rule runs or anything is stored (issue #12 item 1).

An order that is accepted must also be publishable: its ``orders.accepted`` event (the normalised order plus the
link) has to fit the broker's message size (1 MB by default on Kafka). A bill over a limit is refused at once with
one violation naming the limit, so a 10,000-line order or a megabyte of remark costs one small ``orders.rejected``
event and never reaches the rules, the database or the broker's limit.

Codes (fapiao's own, continuing ``order_rules.NEW_CODES``): 00630 too many lines, 00631 bill too large,
00632 a field longer than any field of a bill may be. Fields with a Kingdee length rule (remark 230 → 00549,
goodsName 90 → 00507, …) keep their own code; 00632 only catches what those rules do not cover.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.bill_push import Bill
from schemas.events import Violation

LIMIT_CODES = {
    "00630": "销售单明细行数超过上限",
    "00631": "销售单报文超过大小上限",
    "00632": "字段长度超过上限",
}


@dataclass(frozen=True)
class IntakeLimits:
    max_lines: int = 1000
    """Lines per bill (a 1,000-line bill is ~270 KB, and so is its accepted event)."""
    max_bill_bytes: int = 512 * 1024
    """UTF-8 JSON bytes of one bill as pushed; its accepted event is about as large and must stay under the
    broker's message size (Kafka's default 1 MB)."""
    max_field_chars: int = 500
    """Characters of any one text field (the longest Kingdee rule is the remark's 230)."""


def _long_fields(model: Any, prefix: str, limit: int) -> list[str]:
    fields = {**model.__dict__, **(model.__pydantic_extra__ or {})}
    return [f"{prefix}{name}" for name, value in fields.items() if isinstance(value, str) and len(value) > limit]


def check_limits(bill: Bill, bill_bytes: int, limits: IntakeLimits) -> list[Violation]:
    """Every limit the bill breaks; empty when it may go on to the rules. Plain and cheap: a bill whose size is
    under the field limit cannot hold a field over it, so only larger bills are scanned field by field.

    ``bill_bytes`` is the bill's size as pushed (the whole message's size when that is already under the limit)."""
    out: list[Violation] = []
    lines = bill.billDetail or []
    if len(lines) > limits.max_lines:
        out.append(
            Violation(
                code="00630",
                field="billDetail",
                message=f"销售单明细行数 {len(lines)} 超过上限 {limits.max_lines} 行，请拆分为多张销售单推送",
            )
        )
    if bill_bytes > limits.max_bill_bytes:
        out.append(
            Violation(
                code="00631",
                field="billNo",
                message=f"销售单报文 {bill_bytes} 字节，超过上限 {limits.max_bill_bytes} 字节",
            )
        )
    if bill_bytes <= limits.max_field_chars:
        return out
    too_long = _long_fields(bill, "", limits.max_field_chars)
    for i, line in enumerate(lines[: limits.max_lines]):
        too_long += _long_fields(line, f"billDetail[{i}].", limits.max_field_chars)
    out += [
        Violation(code="00632", field=f, message=f"{f} 长度超过上限 {limits.max_field_chars} 个字符")
        for f in too_long[:20]
    ]
    return out
