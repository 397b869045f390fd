"""默认开票 (seed 000): a 动态二维码设置 with 默认开票 = 是 keeps a preset (预置销售单 information): goods name
``*简称*名称``, 19-digit 税收分类编码, rate, unit, and optionally a fixed or a maximum amount. A scan of that
setting's QR (its own ``/p/<key>`` link, the organisation's static QR, or a business-system link on a setting without
an order-query interface) lets the buyer enter the amount, and the system builds a one-line sales order from the
preset: no pushed order and no order-query interface are needed.

The preset is stored as a JSON document (``PRESET_FIELDS``); amounts are decimal strings with two places.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, Mapping

from fapiao.domain.money import CENT, MAX_AMOUNT, has_at_most_two_places, parse_decimal
from fapiao.domain.tax import ALLOWED_RATES, ZERO_RATE_FLAGS

AMOUNT_MODES = {"any": "买方填写任意金额", "fixed": "固定金额", "max": "买方填写，不超过最高金额"}
PRESET_FIELDS = ("goods_name", "revenue_code", "tax_rate", "units", "zero_rate_flag", "amount_mode", "amount")
GOODS_NAME = re.compile(r"^\*[^*\s][^*]*\*[^*]+$")


def preset_form(form: Mapping[str, Any]) -> dict[str, Any] | None:
    """The preset fields of an admin form, CLI ``key=value`` list or JSON body: flat ``preset_<field>`` keys or a
    nested ``preset`` object. None when the form says nothing about a preset."""
    nested = form.get("preset")
    if isinstance(nested, Mapping):
        return {f: nested.get(f) for f in PRESET_FIELDS}
    flat = {f: form.get(f"preset_{f}") for f in PRESET_FIELDS}
    said = any(flat[f] not in (None, "") for f in PRESET_FIELDS if f != "amount_mode")  # a form always sends a mode
    return flat if said else None


def check_preset(raw: Mapping[str, Any]) -> tuple[dict[str, str | None], dict[str, str]]:
    """``(preset document, {preset_<field>: rule})`` for a preset as typed; every problem at once."""
    text = {f: ("" if raw.get(f) is None else str(raw.get(f)).strip()) for f in PRESET_FIELDS}
    errors: dict[str, str] = {}
    if not GOODS_NAME.match(text["goods_name"]) or len(text["goods_name"]) > 90:
        errors["preset_goods_name"] = "商品名称应为“*简称*名称”，如 *餐饮服务*餐费，不超过90字"
    if not re.fullmatch(r"\d{19}", text["revenue_code"]):
        errors["preset_revenue_code"] = "税收分类编码应为19位数字"
    rate = parse_decimal(text["tax_rate"].removesuffix("%"))
    if rate is not None and rate > 1:
        rate = rate / 100
    if rate is None or rate.normalize() not in {r.normalize() for r in ALLOWED_RATES}:
        errors["preset_tax_rate"] = "税率应为 13%、9%、6%、5%、3%、1.5%、1% 或 0%"
        rate = None
    flag = text["zero_rate_flag"] or None
    if rate is not None and rate == 0 and flag not in ZERO_RATE_FLAGS:
        errors["preset_zero_rate_flag"] = "税率为0时必须选择零税率标识：1 免税、2 不征税、3 普通零税率"
    elif rate is not None and rate != 0 and flag:
        errors["preset_zero_rate_flag"] = "零税率标识只能用于税率为0的预置信息"
    if len(text["units"]) > 20:
        errors["preset_units"] = "单位不超过20字"
    mode = text["amount_mode"] or ("fixed" if text["amount"] else "any")
    if mode not in AMOUNT_MODES:
        errors["preset_amount_mode"] = "金额方式只能是 any（任意）、fixed（固定）或 max（最高）"
    amount = parse_decimal(text["amount"]) if text["amount"] else None
    if mode in ("fixed", "max") and (
        amount is None or amount <= 0 or not has_at_most_two_places(amount) or amount > MAX_AMOUNT
    ):
        errors["preset_amount"] = "固定或最高金额应为大于0、最多两位小数的金额"
    elif mode == "any" and text["amount"]:
        errors["preset_amount"] = "金额方式为任意时不填金额"
    doc = {
        "goods_name": text["goods_name"],
        "revenue_code": text["revenue_code"],
        "tax_rate": format(rate.normalize(), "f") if rate is not None else None,
        "units": text["units"] or None,
        "zero_rate_flag": flag,
        "amount_mode": mode,
        "amount": str(amount.quantize(CENT)) if amount is not None and "preset_amount" not in errors else None,
    }
    return doc, errors


def amount_problem(preset: Mapping[str, Any], amount: Decimal | None) -> str | None:
    """Why the buyer's amount cannot be invoiced under this preset, or None."""
    if amount is None or amount <= 0 or not has_at_most_two_places(amount) or amount > MAX_AMOUNT:
        return "请填写开票金额，例如 88.50"
    limit = Decimal(preset["amount"]) if preset.get("amount") else None
    if preset.get("amount_mode") == "fixed" and amount != limit:
        return f"该二维码的开票金额固定为 ¥{limit}"
    if preset.get("amount_mode") == "max" and limit is not None and amount > limit:
        return f"开票金额不能超过 ¥{limit}"
    return None


def preset_bill(
    preset: Mapping[str, Any],
    *,
    bill_no: str,
    bill_date: str,
    amount: Decimal,
    kind: str,
    seller_name: str,
    seller_tax_id: str,
    system_code: str,
) -> dict[str, Any]:
    """The BILL.PUSH-shaped sales order built from the preset (amount includes tax), to be checked by the same
    rules as a pushed bill (``order_rules.check_bill``)."""
    line = {
        "lineProperty": "2",
        "goodsName": preset["goods_name"],
        "revenueCode": preset["revenue_code"],
        "units": preset.get("units"),
        "amount": str(amount),
        "taxRate": preset["tax_rate"],
        "zeroRateFlag": preset.get("zero_rate_flag"),
    }
    return {
        "businessSystemCode": system_code,
        "billNo": bill_no,
        "billDate": bill_date,
        "invoiceType": kind,
        "includeTaxFlag": "1",
        "totalAmount": str(amount),
        "sellerName": seller_name,
        "sellerTaxpayerId": seller_tax_id,
        "remark": "默认开票",
        "billDetail": [line],
    }


def describe(preset: Mapping[str, Any] | None) -> str:
    """One line for the admin list and the CLI."""
    if not preset:
        return ""
    rate = Decimal(preset["tax_rate"]) * 100
    amount = {"fixed": f"固定 ¥{preset.get('amount')}", "max": f"最高 ¥{preset.get('amount')}"}.get(
        preset.get("amount_mode", ""), "金额由买方填写"
    )
    return f"{preset['goods_name']} {preset['revenue_code']} {rate.normalize():f}% {preset.get('units') or ''} {amount}"
