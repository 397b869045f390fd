"""The ``settings`` topic (同步至移动云): a compacted topic holding what the scan side needs, one record per key.

Keys: ``qr:<key值>`` (a 动态二维码设置 with its organisation) and ``static:<id>`` (a 静态二维码). A record with no
value (a tombstone) removes the key: a revoked static QR, for example. Consumers keep the latest value per key.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


class OrgDoc(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    org_code: str
    seller_name: str
    tax_id: str
    address_tel: str | None = None
    bank_account: str | None = None


class SettingsRecord(BaseModel):
    """One synced setting: a dynamic QR setting (type qr) or a static QR (type static)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    SCHEMA_VERSION: ClassVar[int] = 1

    schema_version: int = 1
    type: Literal["qr", "static"]
    org: OrgDoc
    key: str | None = Field(None, description="key值 (type qr).")
    static_id: str | None = Field(None, description="Static QR id (type static).")
    kinds: list[str] = Field(default_factory=list, description="发票种类 codes the buyer may choose.")
    scan_type: str | None = None
    default_issue: bool = False
    validity_days: int | None = None
    enabled: bool = True
    link_mode: str | None = Field(None, description="hmac or kingdee_md5.")
    business_system_code: str | None = None
    system_secret: str = Field("", description="The business system's HMAC secret (internal topic).")
    query_url: str | None = Field(None, description="The business system's order-query interface (mode 2).")
    preset: dict[str, str | None] | None = Field(
        None,
        description="默认开票's preset sales order: goods_name, revenue_code, tax_rate, units, zero_rate_flag, "
        "amount_mode (any, fixed, max), amount.",
    )
