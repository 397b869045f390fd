"""Rules for what the buyer types on the H5 page (FACTS §3 buyer rules); the page shows each error by its field."""

from __future__ import annotations

import re
from typing import Mapping

from fapiao.domain.taxid import normalise, tax_id_problem
from schemas.events import Buyer, BuyerType, InvoiceKind

SPECIAL_KINDS = frozenset({InvoiceKind.digital_special, InvoiceKind.paper_special, InvoiceKind.electronic_special})
PAPER_SPECIAL = frozenset({InvoiceKind.paper_special})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^1\d{10}$")

BUYER_TYPE_LABELS = {BuyerType.person: "个人", BuyerType.enterprise: "企业", BuyerType.non_enterprise: "非企业单位"}


def check_buyer(form: Mapping[str, str], kind: InvoiceKind) -> Buyer | dict[str, str]:
    """A ``Buyer`` from the submitted form, or ``{field: message}`` for every problem."""
    errors: dict[str, str] = {}
    get = lambda name: (form.get(name) or "").strip()  # noqa: E731

    try:
        buyer_type = BuyerType(get("buyer_type"))
    except ValueError:
        errors["buyer_type"] = "请选择购方类型：个人、企业或非企业单位"
        buyer_type = None

    title = get("title")
    if not title:
        errors["title"] = "请填写发票抬头"
    elif len(title) > 100:
        errors["title"] = "发票抬头不能超过100个字"

    tax_id = normalise(get("tax_id")) if get("tax_id") else ""
    needs_tax_id = buyer_type == BuyerType.enterprise or kind in SPECIAL_KINDS
    if tax_id:
        problem = tax_id_problem(tax_id)
        if problem:
            errors["tax_id"] = problem
    elif needs_tax_id:
        errors["tax_id"] = "企业或专用发票必须填写购方税号" if kind in SPECIAL_KINDS else "企业购方必须填写税号"
    if kind in SPECIAL_KINDS and buyer_type == BuyerType.person:
        errors["buyer_type"] = "专用发票不能开给个人"

    address_tel, bank_account = get("address_tel"), get("bank_account")
    for field, value, label in (("address_tel", address_tel, "地址电话"), ("bank_account", bank_account, "开户行及账号")):
        if len(value) > 100:
            errors[field] = f"{label}不能超过100个字"
        elif not value and kind in PAPER_SPECIAL:
            errors[field] = f"纸质专用发票必须填写{label}"

    email, phone = get("email"), get("phone")
    if email and not _EMAIL.match(email):
        errors["email"] = "邮箱格式不正确"
    if phone and not _PHONE.match(phone):
        errors["phone"] = "手机号应为11位数字，以1开头"
    if not email and not phone:
        errors["email"] = "请至少填写邮箱或手机号之一，用于接收发票"

    if errors:
        return errors
    return Buyer(
        buyer_type=buyer_type,
        title=title,
        tax_id=tax_id or None,
        address_tel=address_tel or None,
        bank_account=bank_account or None,
        email=email or None,
        phone=phone or None,
    )
