"""Build the 数电票 from an order and the buyer's title: per-line 价税分离, totals and 大写."""

from __future__ import annotations

import binascii
from datetime import datetime
from decimal import Decimal

from fapiao.domain.money import round2, to_chinese_upper
from fapiao.domain.tax import split
from schemas.events import Buyer, Invoice, InvoiceKind, InvoiceLine, Order

# The title printed at the top of the invoice, as the 数电 layout prints it; the HTML and the PDF both use it.
INVOICE_TITLES = {
    InvoiceKind.digital_special: "电子发票（增值税专用发票）",
    InvoiceKind.digital_normal: "电子发票（普通发票）",
    InvoiceKind.paper_special: "增值税专用发票",
    InvoiceKind.paper_normal: "普通发票",
    InvoiceKind.electronic_normal: "电子发票（普通发票）",
    InvoiceKind.electronic_special: "电子发票（增值税专用发票）",
    InvoiceKind.roll: "增值税普通发票（卷票）",
}
SPECIAL = frozenset({InvoiceKind.digital_special, InvoiceKind.paper_special, InvoiceKind.electronic_special})


def invoice_title(kind: InvoiceKind) -> str:
    return INVOICE_TITLES[InvoiceKind(kind)]


def qr_kind_code(kind: InvoiceKind) -> str:
    """FACTS §3.1: 31 数电专票, 32 数电普票. Every invoice fapiao issues carries a 20-digit 数电 number and no
    invoice code, so its QR uses the 数电 codes: 31 for the special kinds, 32 for the others (decision)."""
    return "31" if InvoiceKind(kind) in SPECIAL else "32"


def invoice_qr_payload(invoice: Invoice) -> str:
    """The content of the invoice's QR, as tax-bureau verification apps read it (FACTS §3.1):
    ``01,<kind>,,<20-digit number>,<amount>,<yyyymmdd>,,<4 hex>``.

    Decisions where FACTS is UNCONFIRMED: the amount is 合计金额 (excluding tax, 2 places); the 4 hex characters
    are the CRC-16/CCITT-FALSE (``binascii.crc_hqx`` from 0xFFFF) of everything before them, upper case."""
    head = (
        f"01,{qr_kind_code(invoice.kind)},,{invoice.number},{round2(invoice.total_amount)},{invoice.issued_at:%Y%m%d},,"
    )
    return f"{head}{binascii.crc_hqx(head.encode(), 0xFFFF):04X}"


class IssueRefused(Exception):
    """Issuing is not allowed (a permanent reason: retrying will not help)."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code = code
        self.reason = reason


def build_lines(order: Order) -> list[InvoiceLine]:
    out = []
    for line in order.lines:
        if line.tax_amount is not None:
            tax = line.tax_amount
            amount = line.amount - tax if order.include_tax else line.amount
        else:
            s = split(line.amount, line.tax_rate, order.include_tax)
            amount, tax = s.amount, s.tax
        price = None
        if line.price is not None and line.quantity:
            price = (line.price / (1 + line.tax_rate)) if order.include_tax else line.price
            price = Decimal(format(price.quantize(Decimal("0.00000001")).normalize(), "f"))
        out.append(
            InvoiceLine(
                line_no=line.line_no,
                line_property=line.line_property,
                goods_name=line.goods_name,
                revenue_code=line.revenue_code,
                specification=line.specification,
                units=line.units,
                quantity=line.quantity,
                price=price,
                amount=round2(amount),
                tax_rate=line.tax_rate,
                tax_amount=round2(tax),
                zero_rate_flag=line.zero_rate_flag,
            )
        )
    return out


def check_monthly_limit(limit: Decimal | None, issued_this_month: Decimal, total_with_tax: Decimal) -> None:
    if limit is not None and issued_this_month + total_with_tax > limit:
        raise IssueRefused(
            "LIMIT_EXCEEDED",
            f"本月授信额度不足：额度 {limit}，已开 {issued_this_month}，本次 {total_with_tax}",
        )


def build_invoice(order: Order, buyer: Buyer, number: str, issued_at: datetime) -> Invoice:
    lines = build_lines(order)
    total_amount = sum((l.amount for l in lines), Decimal("0.00"))
    total_tax = sum((l.tax_amount for l in lines), Decimal("0.00"))
    total_with_tax = total_amount + total_tax
    return Invoice(
        number=number,
        kind=order.invoice_kind,
        issued_at=issued_at,
        seller_name=order.seller_name,
        seller_tax_id=order.seller_tax_id,
        seller_address_tel=order.seller_address_tel,
        seller_bank_account=order.seller_bank_account,
        buyer=buyer,
        bill_no=order.bill_no,
        lines=lines,
        total_amount=total_amount,
        total_tax=total_tax,
        total_with_tax=total_with_tax,
        total_with_tax_upper=to_chinese_upper(total_with_tax),
        drawer=order.drawer,
        payee=order.payee,
        reviewer=order.reviewer,
        remark=order.remark,
    )


def invoice_number(issued_at: datetime, province: str, channel: str, sequence: int) -> str:
    """20 digits = year (2) + province code (2) + channel (1) + sequence (15) (FACTS §3)."""
    if not (len(province) == 2 and province.isdigit() and len(channel) == 1 and channel.isdigit()):
        raise ValueError("province must be 2 digits and channel 1 digit")
    if not 0 < sequence < 10**15:
        raise ValueError("sequence out of range")
    return f"{issued_at.year % 100:02d}{province}{channel}{sequence:015d}"
