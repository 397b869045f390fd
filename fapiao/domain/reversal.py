"""红冲 rules (FACTS §3): what a 红字确认单 may take from a blue invoice, and the red invoice it becomes.

Plain and synchronous. A confirmation names the blue invoice, one reason from ``REASONS`` and either the whole
invoice (everything not yet reversed) or some lines, each by a smaller quantity or a smaller amount (价税合计 of
the line). What open and issued confirmations took before is passed in, so the sums taken can never exceed the
blue invoice, per line and in total. Amounts here are positive (what is taken); the red invoice negates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Iterable

from fapiao.domain.money import CENT, has_at_most_two_places, round2, to_chinese_upper
from fapiao.domain.tax import split_inclusive
from schemas.events import Invoice, InvoiceLine

REASONS = ("开票有误", "销货退回", "服务中止", "销售折让")
STATES = {"pending": "待确认", "confirmed": "已确认", "issued": "已开具", "cancelled": "已作废"}
OPEN_STATES = ("pending", "confirmed", "issued")  # confirmations that hold part of the blue invoice
LAPSE_AFTER = timedelta(hours=72)
ZERO = Decimal("0.00")


class ReversalRefused(Exception):
    """A reversal that breaks a rule: ``code`` for machines, ``rule`` (Chinese) for the merchant."""

    def __init__(self, code: str, rule: str, field: str = ""):
        super().__init__(f"{code}: {rule}")
        self.code, self.rule, self.field = code, rule, field


@dataclass(frozen=True)
class LineRequest:
    """One line to reverse: by ``quantity`` or by ``amount`` (价税合计 of the line, tax included), not both."""

    line_no: int
    quantity: Decimal | None = None
    amount: Decimal | None = None


@dataclass(frozen=True)
class Taken:
    """What a confirmation takes from one blue line (positive; a discount line's share is negative)."""

    line_no: int
    amount: Decimal
    tax: Decimal
    quantity: Decimal | None = None

    @property
    def with_tax(self) -> Decimal:
        return self.amount + self.tax

    def as_json(self) -> dict:
        return {
            "line_no": self.line_no,
            "amount": str(self.amount),
            "tax_amount": str(self.tax),
            "quantity": None if self.quantity is None else str(self.quantity),
        }

    @classmethod
    def from_json(cls, d: dict) -> "Taken":
        q = d.get("quantity")
        return cls(int(d["line_no"]), Decimal(d["amount"]), Decimal(d["tax_amount"]), None if q is None else Decimal(q))


@dataclass(frozen=True)
class Left:
    amount: Decimal
    tax: Decimal
    quantity: Decimal | None

    @property
    def with_tax(self) -> Decimal:
        return self.amount + self.tax


def check_reason(reason: str) -> None:
    if reason not in REASONS:
        raise ReversalRefused("RED_REASON", f"红冲原因只能是 {' / '.join(REASONS)} 之一，收到“{reason}”", "reason")


def remaining(blue: Invoice, before: Iterable[Taken]) -> dict[int, Left]:
    """What each blue line still has after the confirmations taken ``before``."""
    left = {l.line_no: Left(l.amount, l.tax_amount, l.quantity) for l in blue.lines}
    for t in before:
        cur = left[t.line_no]
        q = None if cur.quantity is None else cur.quantity - (t.quantity or 0)
        left[t.line_no] = Left(cur.amount - t.amount, cur.tax - t.tax, q)
    return left


def _take_line(line: InvoiceLine, left: Left, req: LineRequest) -> Taken:
    where = f"lines[{req.line_no}]"
    if line.line_property != "normal":
        raise ReversalRefused("RED_DISCOUNTED_LINE", f"第 {req.line_no} 行带折扣，只能整单红冲", where)
    if (req.quantity is None) == (req.amount is None):
        raise ReversalRefused("RED_LINE_AMOUNT", f"第 {req.line_no} 行：请给出红冲数量或红冲金额（二选一）", where)
    if left.with_tax <= 0:
        raise ReversalRefused("RED_LINE_REVERSED", f"第 {req.line_no} 行已全部红冲", where)
    if req.quantity is not None:
        if line.quantity is None or left.quantity is None:
            raise ReversalRefused("RED_NO_QUANTITY", f"第 {req.line_no} 行没有数量，请按金额红冲", where)
        if req.quantity <= 0:
            raise ReversalRefused("RED_LINE_AMOUNT", f"第 {req.line_no} 行：红冲数量必须大于 0", where)
        if req.quantity > left.quantity:
            raise ReversalRefused(
                "RED_ABOVE_REMAINING",
                f"第 {req.line_no} 行：红冲数量 {req.quantity} 超过可红冲数量 {left.quantity}",
                where,
            )
        if req.quantity == left.quantity:
            return Taken(req.line_no, left.amount, left.tax, req.quantity)
        with_tax = round2((line.amount + line.tax_amount) * req.quantity / line.quantity)
        quantity = req.quantity
    else:
        assert req.amount is not None  # exactly one of quantity and amount, checked above
        if req.amount <= 0 or not has_at_most_two_places(req.amount):
            raise ReversalRefused("RED_LINE_AMOUNT", f"第 {req.line_no} 行：红冲金额须大于 0 且最多两位小数", where)
        if req.amount > left.with_tax:
            raise ReversalRefused(
                "RED_ABOVE_REMAINING",
                f"第 {req.line_no} 行：红冲金额 {req.amount} 超过可红冲金额 {left.with_tax}",
                where,
            )
        if req.amount == left.with_tax:
            return Taken(req.line_no, left.amount, left.tax, left.quantity)
        with_tax, quantity = req.amount, None
    split = split_inclusive(with_tax, line.tax_rate)
    tax = min(split.tax, left.tax)  # rounding never takes more tax than the line has left
    return Taken(req.line_no, with_tax - tax, tax, quantity)


def plan(blue: Invoice, reason: str, lines: list[LineRequest] | None, before: Iterable[Taken]) -> list[Taken]:
    """What a new confirmation takes: everything left (``lines`` None) or the lines asked for.
    Raises ReversalRefused naming the rule; never takes more than is left, per line or in total."""
    check_reason(reason)
    if blue.red_of:
        raise ReversalRefused("RED_NOT_BLUE", f"{blue.number} 是红字发票，不能再红冲", "invoice")
    left = remaining(blue, before)
    if sum((l.with_tax for l in left.values()), ZERO) <= 0:
        raise ReversalRefused("RED_FULLY_REVERSED", f"发票 {blue.number} 已全部红冲", "invoice")
    if lines is None:
        return [
            Taken(n, l.amount, l.tax, l.quantity if l.quantity else None) for n, l in left.items() if l.amount or l.tax
        ]
    if not lines:
        raise ReversalRefused("RED_NO_LINES", "部分红冲须至少指定一行", "lines")
    by_no = {l.line_no: l for l in blue.lines}
    seen: set[int] = set()
    out = []
    for req in lines:
        if req.line_no not in by_no:
            raise ReversalRefused(
                "RED_UNKNOWN_LINE", f"发票 {blue.number} 没有第 {req.line_no} 行", f"lines[{req.line_no}]"
            )
        if req.line_no in seen:
            raise ReversalRefused("RED_LINE_TWICE", f"第 {req.line_no} 行重复", f"lines[{req.line_no}]")
        seen.add(req.line_no)
        out.append(_take_line(by_no[req.line_no], left[req.line_no], req))
    total_left = sum((l.with_tax for l in left.values()), ZERO)
    if sum((t.with_tax for t in out), ZERO) > total_left:
        raise ReversalRefused("RED_ABOVE_REMAINING", f"红冲合计超过发票可红冲金额 {total_left}", "lines")
    return out


def totals(taken: Iterable[Taken]) -> tuple[Decimal, Decimal, Decimal]:
    taken = list(taken)
    amount = sum((t.amount for t in taken), ZERO)
    tax = sum((t.tax for t in taken), ZERO)
    return amount, tax, amount + tax


def lapses_at(created_at: datetime) -> datetime:
    return created_at + LAPSE_AFTER


def has_lapsed(status: str, lapse_time: datetime, now: datetime) -> bool:
    """An unconfirmed 红字确认单 lapses 72 h after it was made."""
    return status == "pending" and now >= lapse_time


def _red_line(line: InvoiceLine, t: Taken) -> InvoiceLine:
    quantity, price = (-t.quantity, line.price) if t.quantity else (None, None)
    if quantity is not None and price is not None and abs(quantity * price + t.amount) > CENT:
        quantity, price = None, None  # after an amount-only reversal the unit price no longer fits: amount only
    return line.model_copy(update={"quantity": quantity, "price": price, "amount": -t.amount, "tax_amount": -t.tax})


def red_invoice(
    blue: Invoice, taken: list[Taken], number: str, issued_at: datetime, confirmation_id: str, reason: str
) -> Invoice:
    """The red invoice: the blue one's parties and kind, negative lines and totals, a reference to the blue."""
    by_no = {l.line_no: l for l in blue.lines}
    lines = [_red_line(by_no[t.line_no], t) for t in taken]
    amount, tax, with_tax = totals(taken)
    return blue.model_copy(
        update={
            "number": number,
            "issued_at": issued_at,
            "lines": lines,
            "total_amount": -amount,
            "total_tax": -tax,
            "total_with_tax": -with_tax,
            "total_with_tax_upper": to_chinese_upper(-with_tax),
            "remark": f"被红冲蓝字数电发票号码：{blue.number} 红字发票信息确认单编号：{confirmation_id} 红冲原因：{reason}",
            "red_of": blue.number,
            "red_confirmation_id": confirmation_id,
        }
    )


def line_requests(raw: list[dict]) -> list[LineRequest]:
    """Lines as given by a form, JSON or the CLI (``line_no`` and ``quantity`` or ``amount`` as text or numbers);
    raises ReversalRefused naming the field that is not a number."""
    from fapiao.domain.money import parse_decimal

    out = []
    for i, item in enumerate(raw):
        try:
            line_no = int(str(item.get("line_no", "")).strip())
        except ValueError:
            raise ReversalRefused(
                "RED_LINE_NO", f"lines[{i}].line_no 必须是发票上的行号（整数）", f"lines[{i}].line_no"
            ) from None
        values: dict[str, Decimal | None] = {}
        for name in ("quantity", "amount"):
            text = item.get(name)
            if text is None or str(text).strip() == "":
                values[name] = None
                continue
            values[name] = parse_decimal(str(text))
            if values[name] is None:
                raise ReversalRefused(
                    "RED_LINE_AMOUNT", f"第 {line_no} 行：{name} 不是数字：{text}", f"lines[{i}].{name}"
                )
        out.append(LineRequest(line_no, values["quantity"], values["amount"]))
    return out


def check_reissue(
    blue_number: str, blue_with_tax: Decimal, red_with_tax: Iterable[Decimal], reasons: Iterable[str]
) -> None:
    """重开 is for a wrong title: the blue invoice must be fully reversed (red invoices issued for all of it), and
    every one of its 红字确认单 for 开票有误. Raises ReversalRefused naming the rule."""
    if blue_with_tax + sum(red_with_tax, ZERO) != 0:
        raise ReversalRefused(
            "REISSUE_NOT_REVERSED", f"发票 {blue_number} 尚未全额红冲（红字发票全部开具后才能重开）", "invoice"
        )
    if any(r != "开票有误" for r in reasons):
        raise ReversalRefused("REISSUE_REASON", f"发票 {blue_number} 不是因“开票有误”红冲的，不能重开", "reason")
