"""Rules for what the buyer types on the H5 page (FACTS §3 buyer rules); the page shows each error by its field."""

from __future__ import annotations

import re
import unicodedata
from typing import Callable, Mapping

from email_validator import EmailNotValidError, validate_email

from fapiao.errors import FieldErrors
from fapiao.domain.taxid import buyer_id_problem, normalise
from fapiao.domain.text import text_problem
from schemas.events import Buyer, BuyerType, InvoiceKind

SPECIAL_KINDS = frozenset({InvoiceKind.digital_special, InvoiceKind.paper_special, InvoiceKind.electronic_special})
PAPER_SPECIAL = frozenset({InvoiceKind.paper_special})
_PHONE = re.compile(r"^1\d{10}$")

BUYER_TYPE_LABELS = {BuyerType.person: "个人", BuyerType.enterprise: "企业", BuyerType.non_enterprise: "非企业单位"}


_FIELD_LABELS = {
    "title": "发票抬头",
    "tax_id": "购方税号",
    "address_tel": "地址电话",
    "bank_account": "开户行及账号",
    "email": "邮箱",
    "phone": "手机号",
}

_Errors = dict[str, str]
_Get = Callable[[str], str]


def check_buyer(form: Mapping[str, str], kind: InvoiceKind) -> Buyer | FieldErrors:
    """A ``Buyer`` from the submitted form, or ``FieldErrors`` (``{field: message}``) for every problem. Pure; raises nothing for bad
    input."""
    errors = _text_errors(form)
    get = _reader(form, errors)
    buyer_type = _check_buyer_type(errors, get)
    title = _check_title(errors, get)
    tax_id = _check_tax_id(errors, get, buyer_type, kind)
    address_tel, bank_account = _check_address_bank(errors, get, kind)
    email, phone = _check_contact(errors, get)
    if errors:
        return FieldErrors(errors)
    return Buyer(
        buyer_type=buyer_type,
        title=title,
        tax_id=tax_id or None,
        address_tel=address_tel or None,
        bank_account=bank_account or None,
        email=email or None,
        phone=phone or None,
    )


def _text_errors(form: Mapping[str, str]) -> _Errors:
    """Hidden or display-changing characters never reach an invoice."""
    errors: _Errors = {}
    for name, label in _FIELD_LABELS.items():
        problem = text_problem(str(form.get(name) or ""))
        if problem:
            errors[name] = label + problem
    return errors


def _reader(form: Mapping[str, str], errors: _Errors) -> _Get:
    """A field's value, NFC-normalised and stripped; "" for a field already refused for its characters."""
    return lambda name: "" if name in errors else unicodedata.normalize("NFC", str(form.get(name) or "")).strip()


def _check_buyer_type(errors: _Errors, get: _Get) -> BuyerType | None:
    try:
        return BuyerType(get("buyer_type"))
    except ValueError:
        errors["buyer_type"] = "请选择购方类型：个人、企业或非企业单位"
        return None


def _check_title(errors: _Errors, get: _Get) -> str:
    title = get("title")
    if "title" in errors:
        pass
    elif not title:
        errors["title"] = "请填写发票抬头"
    elif len(title) > 100:
        errors["title"] = "发票抬头不能超过100个字"
    return title


def _check_tax_id(errors: _Errors, get: _Get, buyer_type: BuyerType | None, kind: InvoiceKind) -> str:
    """The buyer's tax ID (a person's may be an ID card number), required for an enterprise or a special invoice;
    a special invoice is never for a person."""
    tax_id = normalise(get("tax_id")) if get("tax_id") else ""
    needs_tax_id = buyer_type == BuyerType.enterprise or kind in SPECIAL_KINDS
    if "tax_id" in errors:
        pass
    elif tax_id:
        problem = buyer_id_problem(tax_id, person=buyer_type == BuyerType.person)
        if problem:
            errors["tax_id"] = problem
    elif needs_tax_id:
        errors["tax_id"] = "企业或专用发票必须填写购方税号" if kind in SPECIAL_KINDS else "企业购方必须填写税号"
    if kind in SPECIAL_KINDS and buyer_type == BuyerType.person:
        errors["buyer_type"] = "专用发票不能开给个人"
    return tax_id


def _check_address_bank(errors: _Errors, get: _Get, kind: InvoiceKind) -> tuple[str, str]:
    address_tel, bank_account = get("address_tel"), get("bank_account")
    for field, value, label in (
        ("address_tel", address_tel, "地址电话"),
        ("bank_account", bank_account, "开户行及账号"),
    ):
        if field in errors:
            continue
        if len(value) > 100:
            errors[field] = f"{label}不能超过100个字"
        elif not value and kind in PAPER_SPECIAL:
            errors[field] = f"纸质专用发票必须填写{label}"
    return address_tel, bank_account


def _check_contact(errors: _Errors, get: _Get) -> tuple[str, str]:
    """E-mail and phone, at least one of them (the invoice is sent there)."""
    email, phone = get("email"), get("phone")
    if email:
        email, problem = _checked_email(email)
        if problem:
            errors["email"] = problem
    if phone and not _PHONE.match(phone):
        errors["phone"] = "手机号应为11位数字，以1开头"
    if not email and not phone and "email" not in errors and "phone" not in errors:
        errors["email"] = "请至少填写邮箱或手机号之一，用于接收发票"
    return email, phone


def _checked_email(email: str) -> tuple[str, str | None]:
    """(the address as it will be used, None) or (email, why it is refused). email-validator knows RFC 5322
    and 6531 (dots, quoting, IDN domains); no DNS lookup: a buyer waits on this page."""
    if len(email) > 100:
        return email, "邮箱不能超过100个字符"
    try:
        checked = validate_email(
            email, check_deliverability=False, allow_quoted_local=False, allow_domain_literal=False
        )
    except EmailNotValidError as exc:
        return email, f"邮箱格式不正确：{exc}"
    return checked.normalized, None
