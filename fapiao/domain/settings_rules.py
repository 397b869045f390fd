"""Rules for what finance staff enter in the admin: organisations (业务组织), business systems (业务系统) and
动态二维码设置. Each function returns ``(values, errors)``: the cleaned values, and ``{field: "rule it broke"}`` for every problem at
once (empty when the input is valid)."""

from __future__ import annotations

import re
from typing import Any, Mapping

from fapiao.domain.merchant import LinkMode, ScanType
from fapiao.domain.money import has_at_most_two_places, parse_decimal
from fapiao.domain.order_rules import KIND_NAMES
from fapiao.domain.taxid import normalise, tax_id_problem

CODE = re.compile(r"^[A-Za-z0-9_.-]{1,50}$")
URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
TRUE = {"1", "true", "yes", "on", "是", True}
FALSE = {"0", "false", "no", "off", "否", "", None, False}


def _text(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    return "" if value is None else str(value).strip()


def _flag(form, name, errors, default: bool) -> bool:
    raw = form.get(name, default)
    raw = raw.strip().lower() if isinstance(raw, str) else raw
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    errors[name] = "只能是“是”或“否”"
    return default


def check_org(form: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    code = _text(form, "org_code")
    if not CODE.match(code):
        errors["org_code"] = "组织编码必填，1–50位字母、数字、_ . -"
    out["org_code"] = code
    name = _text(form, "seller_name")
    if not name or len(name) > 100:
        errors["seller_name"] = "销售方名称必填，不超过100字"
    out["seller_name"] = name
    tax_id = normalise(_text(form, "tax_id"))
    problem = tax_id_problem(tax_id) if tax_id else "税号必填"
    if problem:
        errors["tax_id"] = problem
    out["tax_id"] = tax_id
    for field, label in (("address_tel", "地址电话"), ("bank_account", "开户行及账号")):
        out[field] = _text(form, field) or None
        if out[field] and len(out[field]) > 100:
            errors[field] = f"{label}不超过100字"
    for field, label in (("drawer", "开票人"), ("payee", "收款人"), ("reviewer", "复核人")):
        out[field] = _text(form, field) or None
        if out[field] and len(out[field]) > 20:
            errors[field] = f"{label}不超过20字"
    limit = _text(form, "monthly_limit")
    out["monthly_limit"] = None
    if limit:
        value = parse_decimal(limit)
        if value is None or value < 0 or not has_at_most_two_places(value):
            errors["monthly_limit"] = "授信额度应为不小于0、最多两位小数的金额"
        else:
            out["monthly_limit"] = value
    return out, errors


def check_business_system(form: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    errors: dict[str, str] = {}
    out: dict[str, Any] = {"code": _text(form, "code"), "name": _text(form, "name")}
    if not CODE.match(out["code"]):
        errors["code"] = "业务系统编码必填，1–50位字母、数字、_ . -"
    if not out["name"] or len(out["name"]) > 100:
        errors["name"] = "业务系统名称必填，不超过100字"
    out["enabled"] = _flag(form, "enabled", errors, True)
    for field in ("query_url", "callback_url"):
        out[field] = _text(form, field) or None
        if out[field] and (len(out[field]) > 500 or not URL.match(out[field])):
            errors[field] = "应为 http:// 或 https:// 开头的地址，不超过500字"
    return out, errors


def check_qr_setting(form: Mapping[str, Any], org_codes: set[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """动态二维码设置: 默认开票, 业务编码 (an existing org), 扫码类型, 发票种类 (non-empty subset), 有效期 (days > 0)."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    out["default_issue"] = _flag(form, "default_issue", errors, False)
    out["org_code"] = _text(form, "org_code")
    if not out["org_code"]:
        errors["org_code"] = "业务编码必填"
    elif out["org_code"] not in org_codes:
        errors["org_code"] = f"业务编码 {out['org_code']} 不是已有的业务组织"
    scan_type = _text(form, "scan_type") or ScanType.issue.value
    labels = {"扫码开票": ScanType.issue.value, "扫码提交抬头": ScanType.submit_title.value}
    scan_type = labels.get(scan_type, scan_type)
    if scan_type not in {t.value for t in ScanType}:
        errors["scan_type"] = "扫码类型只能是“扫码提交抬头”或“扫码开票”"
    out["scan_type"] = scan_type
    kinds = form.get("kinds")
    if isinstance(kinds, str):
        kinds = [k for k in re.split(r"[,\s]+", kinds) if k]
    kinds = sorted(set(kinds or []))
    unknown = [k for k in kinds if k not in KIND_NAMES]
    if not kinds:
        errors["kinds"] = "发票种类至少选择一种"
    elif unknown:
        errors["kinds"] = f"发票种类 {', '.join(unknown)} 无效，可选：{', '.join(KIND_NAMES)}"
    out["kinds"] = kinds
    days = _text(form, "validity_days")
    if not days.isdigit() or int(days) <= 0 or int(days) > 3650:
        errors["validity_days"] = "二维码有效期为大于0的整数天（不超过3650）"
    else:
        out["validity_days"] = int(days)
    out["enabled"] = _flag(form, "enabled", errors, True)
    mode = _text(form, "link_mode") or LinkMode.hmac.value
    if mode not in {m.value for m in LinkMode}:
        errors["link_mode"] = "链接签名方式只能是 hmac 或 kingdee_md5"
    out["link_mode"] = mode
    out["business_system_code"] = _text(form, "business_system_code") or None
    return out, errors
