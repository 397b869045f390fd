"""What the order and scan rules need to know about a merchant, as plain values (no database here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum


class ScanType(str, Enum):
    submit_title = "submit_title"  # 扫码提交抬头: the scan only collects the title; issued later
    issue = "issue"  # 扫码开票: the scan issues the invoice


class LinkMode(str, Enum):
    hmac = "hmac"  # signature over key, order, amount and time (default for new keys)
    kingdee_md5 = "kingdee_md5"  # FACTS §1.1 compatibility: md5(reverse(key + key))


@dataclass(frozen=True)
class OrgView:
    org_code: str
    seller_name: str
    tax_id: str
    address_tel: str | None = None
    bank_account: str | None = None
    drawer: str | None = None
    payee: str | None = None
    reviewer: str | None = None
    monthly_limit: Decimal | None = None


@dataclass(frozen=True)
class BusinessSystemView:
    code: str
    name: str
    enabled: bool
    secret: str = ""
    query_url: str | None = None
    callback_url: str | None = None


@dataclass(frozen=True)
class QrSettingView:
    key: str
    org: OrgView
    kinds: frozenset[str]
    validity_days: int
    scan_type: ScanType = ScanType.issue
    default_issue: bool = False
    enabled: bool = True
    link_mode: LinkMode = LinkMode.hmac


@dataclass(frozen=True)
class PushContext:
    """Everything the push rules look up, resolved before they run."""

    system: BusinessSystemView | None
    setting: QrSettingView | None
    line_tax_tolerance: Decimal = Decimal("0.06")
    known_org_tax_ids: frozenset[str] = field(default_factory=frozenset)
    bound_org_tax_ids: frozenset[str] | None = None
    """Tax IDs of the organisations bound to the pushing business system (its 动态二维码设置); None: not checked."""
