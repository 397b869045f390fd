"""Every rule a pushed bill must pass, reported all at once with Kingdee-style codes and Chinese messages.

Codes of FACTS §1.3 are reused where one exists; rules Kingdee's list does not cover use new codes in the
same style, from 00601 up (listed in ``NEW_CODES`` and in the README). ``check_bill`` returns either a normalised
``Order`` or the full list of violations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Literal, TypeGuard, cast

from fapiao.domain.merchant import PushContext
from fapiao.domain.money import CENT, MAX_AMOUNT, has_at_most_two_places, parse_decimal, round2
from fapiao.domain.tax import (
    ALLOWED_RATES,
    INVOICE_TAX_TOLERANCE,
    LINE_AMOUNT_TOLERANCE,
    ZERO_RATE_FLAGS,
    split_inclusive,
)
from fapiao.domain.taxid import buyer_id_problem, normalise, tax_id_problem
from fapiao.domain.text import text_problem
from schemas.bill_push import Bill, BillLine
from schemas.events import InvoiceKind, Order, OrderLine, Violation

KIND_NAMES = {
    "08xdp": "数电票（增值税专用发票）",
    "10xdp": "数电票（普通发票）",
    "004": "纸质专用发票",
    "007": "纸质普通发票",
    "026": "电子普通发票",
    "028": "电子专用发票",
    "025": "增值税普通发票（卷票）",
}

NEW_CODES = {
    "00601": "业务系统不存在",
    "00602": "业务系统未启用",
    "00603": "发票类型不在动态二维码设置的票种范围内",
    "00604": "开票方企业税号无效",
    "00605": "开票方企业税号不属于已配置的业务组织",
    "00606": "明细税率不在允许范围内",
    "00607": "明细数量乘以单价与金额之差超过0.01",
    "00608": "明细税额与金额乘以税率之差超过允许误差",
    "00609": "发票累计税额误差超过1.27",
    "00610": "折扣行必须紧跟在被折扣的正常行之后",
    "00611": "折扣行不能有数量和单价，金额必须为负数",
    "00612": "销售单日期格式错误",
    "00613": "金额格式错误",
    "00614": "发票类型无效",
    "00615": "含税标志无效",
    "00616": "销售方名称不能为空",
    "00617": "未找到可用的动态二维码设置",
    "00618": "二维码有效期必须为正整数天",
    "00619": "折扣行税率必须与被折扣行一致",
    "00620": "零税率标识只能用于零税率明细",
    "00622": "买方税号无效",
    "00623": "scanh5Url 参数错误",
    "00634": "文本含控制字符、文字方向控制字符或零宽字符",
}

SAVED = ("0000", "保存数据成功")  # the push's overall answer (FACTS §1.3), on orders.accepted
NOT_SAVED = ("0001", "保存数据失败")  # ... and on orders.rejected
PREFERENTIAL_FLAGS = {"0", "1"}
_YES, _NO = {"1", "true", "True", "Y", "y"}, {"0", "false", "False", "N", "n"}

_ALLOWED_RATES = frozenset(r.normalize() for r in ALLOWED_RATES)  # normalised once, not per line
_DATE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$|^(\d{4})(\d{2})(\d{2})$")


class _Collector:
    def __init__(self) -> None:
        self.items: list[Violation] = []

    def add(self, code: str, field: str, message: str) -> None:
        self.items.append(Violation(code=code, field=field, message=message))

    def too_long(self, value: str | None, limit: int, code: str, field: str, message: str) -> None:
        if value is not None and len(value) > limit:
            self.add(code, field, message)


def _blank(v: str | None) -> bool:
    return v is None or not v.strip()


def _filled(v: str | None) -> TypeGuard[str]:
    """Not blank (a type guard: where it holds, the text is there)."""
    return v is not None and bool(v.strip())


def parse_bill_date(text: str) -> date | None:
    m = _DATE.match(text.strip())
    if not m:
        return None
    y, mo, d = (int(g) for g in (m.group(1, 2, 3) if m.group(1) else m.group(4, 5, 6)))
    try:
        return date(y, mo, d)
    except ValueError:
        return None


def _money(v: _Collector, text: str | None, field: str, *, code_missing: str, msg_missing: str) -> Decimal | None:
    if _blank(text):
        v.add(code_missing, field, msg_missing)
        return None
    value = parse_decimal(text)
    if value is None or not has_at_most_two_places(value) or abs(value) > MAX_AMOUNT:
        v.add("00613", field, f"金额格式错误：{text!r} 应为最多12位整数、2位小数的数字")
        return None
    return value.quantize(CENT)  # "100" and 100 become 100.00: money always carries its two places


def _line_property(raw: str | None) -> str:
    # BILL.PUSH input marks a normal line "2" (or "0"/absent); "1" marks a discount line (FACTS §1.2).
    return "discount" if (raw or "").strip() == "1" else "normal"


@dataclass
class _Line:
    """One bill line as checked: what the order line is built from, and what the bill-level rules read."""

    prop: str  # "normal" or "discount"; a normal line followed by its discount line becomes "discounted"
    amount: Decimal | None
    rate: Decimal | None
    tax: Decimal | None
    diff: Decimal  # tax as given minus tax as computed; summed over the bill for 00609
    qty: Decimal | None
    price: Decimal | None
    flag: str | None


def _check_line(v: _Collector, i: int, line: BillLine, include_tax: bool | None, tol: Decimal) -> _Line:
    f = f"billDetail[{i}]"
    prop = _line_property(line.lineProperty)
    _check_line_goods(v, f, line)
    amount = _money(v, line.amount, f"{f}.amount", code_missing="00563", msg_missing="明细金额不能为空")
    rate = _line_rate(v, f, line)
    flag = _check_line_flags(v, f, line, rate)
    qty, price = _line_quantity_price(v, f, line)
    if prop == "discount":
        if qty is not None or price is not None or (amount is not None and amount >= 0):
            v.add("00611", f, "折扣行不能有数量和单价，金额必须为负数")
    elif qty is not None and price is not None and amount is not None:
        if abs(qty * price - amount) > LINE_AMOUNT_TOLERANCE:
            v.add("00607", f"{f}.amount", f"数量×单价（{qty * price}）与金额（{amount}）之差超过0.01")
    tax, diff = _line_tax(v, f, line, amount, rate, include_tax, tol)
    return _Line(prop=prop, amount=amount, rate=rate, tax=tax, diff=diff, qty=qty, price=price, flag=flag)


def _check_line_goods(v: _Collector, f: str, line: BillLine) -> None:
    if _blank(line.goodsName):
        v.add("00559", f"{f}.goodsName", "商品名称不能为空")
    v.too_long(line.goodsName, 90, "00507", f"{f}.goodsName", "货物名称超过规定长度90位")
    v.too_long(line.specification, 40, "00508", f"{f}.specification", "规格型号超过规定长度40位")
    v.too_long(line.units, 20, "00509", f"{f}.units", "单位超过规定长度20位")
    if not re.fullmatch(r"\d{19}", (line.revenueCode or "").strip()):
        v.add("00560", f"{f}.revenueCode", "商品编码长度必须为19位")


def _line_rate(v: _Collector, f: str, line: BillLine) -> Decimal | None:
    if _blank(line.taxRate):
        v.add("00564", f"{f}.taxRate", "明细税率不能为空")
        return None
    raw_rate = parse_decimal(line.taxRate)
    if raw_rate is not None and raw_rate > 1:  # "13" meaning 13%
        raw_rate = raw_rate / 100
    if raw_rate is None or raw_rate.normalize() not in _ALLOWED_RATES:
        v.add("00606", f"{f}.taxRate", f"明细税率 {line.taxRate} 不在允许范围内（13%、9%、6%、5%、3%、1.5%、1%、0%）")
        return None
    return raw_rate.normalize()


def _check_line_flags(v: _Collector, f: str, line: BillLine, rate: Decimal | None) -> str | None:
    """The zero-rate flag (returned) and the preferential-policy flag."""
    flag = (line.zeroRateFlag or "").strip() or None
    if rate is not None and rate == 0 and flag not in ZERO_RATE_FLAGS:
        v.add("00583", f"{f}.zeroRateFlag", "明细税率为零时,必须有零税率标识（1 免税、2 不征税、3 普通零税率）")
    if rate is not None and rate != 0 and flag is not None:
        v.add("00620", f"{f}.zeroRateFlag", "零税率标识只能用于税率为0的明细")
    policy = (line.preferentialPolicyFlag or "").strip()
    if policy and policy not in PREFERENTIAL_FLAGS:
        v.add(
            "00561",
            f"{f}.preferentialPolicyFlag",
            f"优惠使用标识参数错误：{line.preferentialPolicyFlag!r}，应为 0 或 1",
        )
    elif policy == "1" and _blank(line.vatSpecialManagement):
        v.add("00562", f"{f}.vatSpecialManagement", "发票使用标记为1时,增值税特殊管理不能为空")
    return flag


def _line_quantity_price(v: _Collector, f: str, line: BillLine) -> tuple[Decimal | None, Decimal | None]:
    qty = parse_decimal(line.quantity) if _filled(line.quantity) else None
    price = parse_decimal(line.price) if _filled(line.price) else None
    if _filled(line.quantity) and qty is None:
        v.add("00613", f"{f}.quantity", f"数量格式错误：{line.quantity!r}")
    if _filled(line.price) and price is None:
        v.add("00613", f"{f}.price", f"单价格式错误：{line.price!r}")
    return qty, price


def _line_tax(
    v: _Collector,
    f: str,
    line: BillLine,
    amount: Decimal | None,
    rate: Decimal | None,
    include_tax: bool | None,
    tol: Decimal,
) -> tuple[Decimal | None, Decimal]:
    """The line's tax (as given and checked against amount × rate, or computed when omitted) and its error."""
    tax = None
    if _filled(line.taxAmount):
        tax = _money(v, line.taxAmount, f"{f}.taxAmount", code_missing="00564", msg_missing="")
    diff = Decimal(0)
    if tax is not None and amount is not None and rate is not None:
        excluding = amount - tax if include_tax else amount
        diff = excluding * rate - tax
        if abs(diff) > tol:
            v.add("00608", f"{f}.taxAmount", f"税额 {tax} 与金额×税率（{round2(excluding * rate)}）之差超过 {tol}")
    elif amount is not None and rate is not None and include_tax is not None:
        tax = split_inclusive(amount, rate).tax if include_tax else round2(amount * rate)
    return tax, diff


def _free_text(bill: Bill):
    """(field, text) of every text field of the bill and its lines (the fields fapiao knows, not extras)."""
    for name in type(bill).model_fields:
        value = getattr(bill, name)
        if isinstance(value, str):
            yield name, value
    for i, line in enumerate(bill.billDetail or []):
        for name in type(line).model_fields:
            value = getattr(line, name)
            if isinstance(value, str):
                yield f"billDetail[{i}].{name}", value


# Bill fields with a length limit checked after the header (bill number's limit sits with its other rule):
# (field, limit, code, message), in the order they are reported.
LENGTH_LIMITS = (
    ("remark", 230, "00549", "销售单备注超过规定长度230位"),
    ("buyerName", 100, "00504", "抬头超过规定长度100位"),
    ("buyerAddressAndTel", 100, "00506", "买方地址电话超过规定长度100位"),
    ("buyerBankAndAccount", 100, "00505", "买方银行账号超过规定长度100位"),
    ("buyerRecipientMail", 100, "00579", "买方邮箱超长"),
    ("buyerRecipientPhone", 20, "00544", "买方手机号码超长"),
    ("buyerTaxpayerId", 20, "0581", "买方税号超长"),
)


@dataclass
class _Header:
    """What the bill-level rules found on a bill that passed them all, for the order."""

    system_code: str
    bill_date: date
    kind: str
    include_tax: bool
    total: Decimal
    discount: Decimal | None
    seller_tax_id: str | None


def check_bill(bill: Bill, ctx: PushContext, envelope_system: str | None = None) -> Order | list[Violation]:
    """Check a pushed bill against every rule (the push envelope's system code fills a missing bill one) and return
    the normalised ``Order``, or every violation found, in a fixed order. Pure: reads only ``ctx``, raises nothing
    for bad input, same answer for the same bill."""
    v = _Collector()
    system_code = _check_system(v, bill, ctx, envelope_system)
    _check_bill_no(v, bill)
    bill_date = _check_date(v, bill)
    kind = _check_kind(v, bill)
    include_tax = _check_tax_flag(v, bill)
    total, discount = _check_amounts(v, bill)
    seller_tax_id = _check_seller(v, bill, ctx)
    _check_setting_scope(v, bill, ctx, kind)
    _check_lengths(v, bill)
    _check_buyer_tax_id(v, bill)
    _check_text(v, bill)
    lines = bill.billDetail or []
    if not lines:
        v.add("00556", "billDetail", "销售单明细不能为空")
    checked = [_check_line(v, i, line, include_tax, ctx.line_tax_tolerance) for i, line in enumerate(lines)]
    _check_discount_lines(v, checked)
    _check_totals(v, checked, total, discount)
    if v.items:
        return v.items
    # No violation: the rules above found each of these, or they would have said so.
    assert bill_date is not None and kind is not None and include_tax is not None and total is not None
    header = _Header(system_code, bill_date, kind, include_tax, total, discount, seller_tax_id)
    return _to_order(bill, header, lines, checked)


def _check_system(v: _Collector, bill: Bill, ctx: PushContext, envelope_system: str | None) -> str:
    system_code = (bill.businessSystemCode or envelope_system or "").strip()
    if not system_code:
        v.add("00601", "businessSystemCode", "业务系统编码不能为空")
    elif ctx.system is None:
        v.add("00601", "businessSystemCode", f"业务系统 {system_code} 不存在")
    elif not ctx.system.enabled:
        v.add("00602", "businessSystemCode", f"业务系统 {system_code} 未启用")
    return system_code


def _check_bill_no(v: _Collector, bill: Bill) -> None:
    if _blank(bill.billNo):
        v.add("00552", "billNo", "销售单编号不能为空")
    v.too_long(bill.billNo, 40, "00548", "billNo", "销售单编号超过规定长度40位")


def _check_date(v: _Collector, bill: Bill) -> date | None:
    if not _filled(bill.billDate):
        v.add("00553", "billDate", "销售单日期不能为空")
        return None
    bill_date = parse_bill_date(bill.billDate)
    if bill_date is None:
        v.add("00612", "billDate", f"销售单日期格式错误：{bill.billDate!r}，应为 yyyy-M-d")
    return bill_date


def _check_kind(v: _Collector, bill: Bill) -> str | None:
    if not _filled(bill.invoiceType):
        v.add("00554", "invoiceType", "销售单发票类型不能为空")
    elif bill.invoiceType.strip() not in KIND_NAMES:
        v.add("00614", "invoiceType", f"发票类型 {bill.invoiceType} 无效，可选：{', '.join(KIND_NAMES)}")
    else:
        return bill.invoiceType.strip()
    return None


def _check_tax_flag(v: _Collector, bill: Bill) -> bool | None:
    flag = (bill.includeTaxFlag or "1").strip()
    if flag in ("1", "true", "True"):
        return True
    if flag in ("0", "false", "False"):
        return False
    v.add("00615", "includeTaxFlag", f"含税标志 {bill.includeTaxFlag!r} 无效，应为 0 或 1")
    return None


def _check_amounts(v: _Collector, bill: Bill) -> tuple[Decimal | None, Decimal | None]:
    """Total, order-level discount and invoice amount; returns (total, discount)."""
    total = _money(v, bill.totalAmount, "totalAmount", code_missing="00551", msg_missing="销售单金额不能为空")
    discount = invoice_amount = None
    if _filled(bill.totalDiscountAmount):
        discount = _money(v, bill.totalDiscountAmount, "totalDiscountAmount", code_missing="", msg_missing="")
        if discount is not None and discount > 0 and _blank(bill.discountType):
            v.add("00580", "discountType", "订单总折扣金额大于0时,折扣方式不能为空")
    if _filled(bill.invoiceAmount):
        invoice_amount = _money(v, bill.invoiceAmount, "invoiceAmount", code_missing="", msg_missing="")
    elif discount:
        v.add("00550", "invoiceAmount", "销售单开票金额不能为空（有订单总折扣金额时必填）")
    if invoice_amount is not None and total is not None and total - (discount or 0) != invoice_amount:
        v.add(
            "00568",
            "invoiceAmount",
            f"总金额减去折扣额不等于开票金额：{total} − {discount or Decimal('0.00')} ≠ {invoice_amount}",
        )
    return total, discount


def _check_seller(v: _Collector, bill: Bill, ctx: PushContext) -> str | None:
    """Seller name and tax ID (one of the configured organisations); returns the normalised tax ID."""
    if _blank(bill.sellerName):
        v.add("00616", "sellerName", "销售方名称不能为空")
    if not _filled(bill.sellerTaxpayerId):
        v.add("0520", "sellerTaxpayerId", "开票方企业税号不能为空")
        return None
    seller_tax_id = normalise(bill.sellerTaxpayerId)
    problem = tax_id_problem(seller_tax_id)
    if len(seller_tax_id) > 20:
        v.add("00604", "sellerTaxpayerId", "开票方企业税号超过20位")
    elif problem:
        v.add("00604", "sellerTaxpayerId", f"开票方企业税号无效：{problem}")
    elif ctx.known_org_tax_ids and seller_tax_id not in ctx.known_org_tax_ids:
        v.add("00605", "sellerTaxpayerId", f"开票方企业税号 {seller_tax_id} 不属于已配置的业务组织")
    return seller_tax_id


def _check_setting_scope(v: _Collector, bill: Bill, ctx: PushContext, kind: str | None) -> None:
    """The dynamic-QR setting: one exists, it allows the kind, and the link's validity asked for is sane."""
    if ctx.system is not None and ctx.setting is None:
        v.add("00617", "qrKey" if bill.qrKey else "sellerTaxpayerId", "未找到该销售方可用的动态二维码设置")
    elif ctx.setting is not None and kind is not None and kind not in ctx.setting.kinds:
        allowed = "、".join(KIND_NAMES[k] for k in sorted(ctx.setting.kinds) if k in KIND_NAMES)
        v.add("00603", "invoiceType", f"发票类型 {KIND_NAMES[kind]} 不在动态二维码设置的票种范围内（{allowed}）")
    if _filled(bill.termValidity):
        if not (bill.termValidity.strip().isdigit() and int(bill.termValidity) > 0):
            v.add("00618", "termValidity", "二维码有效期必须为正整数天")


def _check_lengths(v: _Collector, bill: Bill) -> None:
    for field, limit, code, message in LENGTH_LIMITS:
        v.too_long(getattr(bill, field), limit, code, field, message)


def _check_buyer_tax_id(v: _Collector, bill: Bill) -> None:
    if _filled(bill.buyerTaxpayerId) and len(normalise(bill.buyerTaxpayerId)) <= 20:
        # As on the H5 form; an 18-digit value may be a person's 居民身份证 number (GB 11643).
        problem = buyer_id_problem(bill.buyerTaxpayerId, person=True)
        if problem:
            v.add("00622", "buyerTaxpayerId", f"买方税号无效：{problem}")


def _check_text(v: _Collector, bill: Bill) -> None:
    """Hidden or display-changing characters never reach an invoice; scanh5Url is a yes or a no."""
    for field, value in _free_text(bill):
        problem = text_problem(value)
        if problem:
            v.add("00634", field, f"{field} {problem}")
    if _filled(bill.scanh5Url) and bill.scanh5Url.strip() not in _YES | _NO:
        v.add("00623", "scanh5Url", f"scanh5Url 参数错误：{bill.scanh5Url!r}，应为 0 或 1")


def _check_discount_lines(v: _Collector, checked: list[_Line]) -> None:
    """Each discount line right after the normal line it discounts (which becomes "discounted"), same rate, not
    more than that line's amount."""
    for i, c in enumerate(checked):
        if c.prop != "discount":
            continue
        prev = checked[i - 1] if i > 0 else None
        if prev is None or prev.prop != "normal":
            v.add("00610", f"billDetail[{i}]", "折扣行必须紧跟在被折扣的正常行之后")
            continue
        prev.prop = "discounted"
        if c.rate is not None and prev.rate is not None and c.rate != prev.rate:
            v.add("00619", f"billDetail[{i}].taxRate", "折扣行税率必须与被折扣行一致")
        if c.amount is not None and prev.amount is not None and -c.amount > prev.amount:
            v.add("00567", f"billDetail[{i}].amount", "折扣金额大于可折扣比例金额")


def _check_totals(v: _Collector, checked: list[_Line], total: Decimal | None, discount: Decimal | None) -> None:
    """Line amounts add up to the bill's total (and discount lines to its discount); the tax error summed over the
    lines stays within the invoice's tolerance."""
    amounts = [c.amount for c in checked if c.amount is not None]
    if total is not None and checked and len(amounts) == len(checked):  # every line's amount is a number
        if discount is None and sum(amounts) != total:
            v.add("00569", "totalAmount", f"明细金额之和（{sum(amounts)}）不等于总金额（{total}）")
        elif discount is not None:  # totalAmount is before the discount, which the discount lines carry
            gross = sum(a for c, a in zip(checked, amounts) if c.prop != "discount")
            off = -sum((a for c, a in zip(checked, amounts) if c.prop == "discount"), Decimal("0.00"))
            if gross != total:
                v.add("00569", "totalAmount", f"正常明细金额之和（{gross}）不等于总金额（{total}）")
            if off != discount:
                v.add("00569", "totalDiscountAmount", f"折扣行金额之和（{off}）不等于订单总折扣金额（{discount}）")
    cumulative = sum((c.diff for c in checked), Decimal(0))
    if abs(cumulative) > INVOICE_TAX_TOLERANCE:
        v.add("00609", "billDetail", f"发票累计税额误差 {round2(cumulative)} 超过1.27")


def _to_order(bill: Bill, h: _Header, lines: list[BillLine], checked: list[_Line]) -> Order:
    """The normalised order of a bill that passed every rule. Built without validating again (``model_construct``):
    the bill was validated when it was parsed and every value below is one the rules checked, of the field's type
    (``tests/unit/test_order_construct.py`` compares it with a validated copy); the second validation cost ~6 µs."""
    assert h.seller_tax_id is not None  # the seller rule found it, or the bill would have a violation
    return Order.model_construct(
        business_system_code=h.system_code,
        bill_no=(bill.billNo or "").strip(),
        bill_date=h.bill_date.isoformat(),
        invoice_kind=InvoiceKind(h.kind),
        include_tax=h.include_tax,
        total_amount=h.total - (h.discount or 0),
        seller_name=(bill.sellerName or "").strip(),
        seller_tax_id=h.seller_tax_id,
        seller_address_tel=bill.sellerAddressAndTel,
        seller_bank_account=bill.sellerBankAndAccount,
        drawer=bill.drawer,
        payee=bill.payee,
        reviewer=bill.reviewer,
        remark=bill.remark,
        buyer_name=bill.buyerName,
        buyer_tax_id=normalise(bill.buyerTaxpayerId) if bill.buyerTaxpayerId else None,
        buyer_email=bill.buyerRecipientMail,
        lines=[_order_line(i + 1, line, c) for i, (line, c) in enumerate(zip(lines, checked))],
    )


def _order_line(no: int, line: BillLine, c: _Line) -> OrderLine:
    """One line of ``_to_order``: built without validating again, as the order is."""
    assert c.amount is not None and c.rate is not None  # a line without them has a violation
    return OrderLine.model_construct(
        line_no=no,
        line_property=cast(Literal["normal", "discount", "discounted"], c.prop),
        goods_name=(line.goodsName or "").strip(),
        goods_code=line.goodsCode,
        revenue_code=(line.revenueCode or "").strip(),
        specification=line.specification,
        units=line.units,
        quantity=c.qty,
        price=c.price,
        amount=c.amount,
        tax_rate=c.rate,
        tax_amount=c.tax,
        zero_rate_flag=cast(Literal["1", "2", "3"] | None, c.flag),  # 00583/00620 allow only these, or none
    )


def wants_h5_url(bill: Bill) -> bool:
    """V7.0.17: the push asked (``scanh5Url``) for the H5 page URL as well as the QR link."""
    return (bill.scanh5Url or "").strip() in _YES


UNBOUND_ORG = ("00633", "业务系统无权为该开票方推送订单")


def org_binding_violation(ctx: PushContext, seller_tax_id: str | None) -> Violation | None:
    """Issue #12 item 7: a business system may push only for the organisations bound to it (its 动态二维码设置).
    Nothing to say when the system is unknown or the binding was not looked up (other rules speak then)."""
    if ctx.system is None or ctx.bound_org_tax_ids is None or not _filled(seller_tax_id):
        return None
    seller = normalise(seller_tax_id)
    if seller in ctx.bound_org_tax_ids:
        return None
    return Violation(
        code=UNBOUND_ORG[0],
        field="sellerTaxpayerId",
        message=f"业务系统 {ctx.system.code} 未绑定开票方税号 {seller} 的组织，无权为其推送订单",
    )


def key_tax_id_warning(setting_tax_id: str, order_tax_id: str) -> Violation | None:
    """V7.0.18: the QR key's org and the order disagree on the seller tax ID; the order's wins."""
    if normalise(setting_tax_id) == normalise(order_tax_id):
        return None
    return Violation(
        code="00621",
        field="sellerTaxpayerId",
        message="二维码key值对应税号和订单税号不一致，请联系商家提供新的二维码",
    )
