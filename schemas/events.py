"""The contract of every topic: one pydantic model per topic, versioned, documented, exported as JSON Schema.

Rules for changing these models (consumers in other teams depend on them):
- add fields only as optional, never rename or remove, never narrow a type; bump ``SCHEMA_VERSION`` of the
  model when its meaning grows;
- every consumer ignores unknown fields (``extra="ignore"``), so a newer producer never breaks an older consumer;
- money is a decimal string with two places (``"1130.00"``), never a float.

``orders.pushed`` carries Kingdee's BILL.PUSH shape (see ``schemas.bill_push``) so upstream order systems can
publish what they already produce.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Contract(BaseModel):
    """Common envelope fields of fapiao's own events."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    SCHEMA_VERSION: ClassVar[int] = 1

    event_id: str = Field(description="Unique id; a redelivered or re-emitted event keeps its id.")
    schema_version: int = Field(1, description="Version of this event's schema.")
    occurred_at: datetime = Field(default_factory=utcnow, description="When the fact happened (UTC).")
    order_key: str = Field(description="`{sellerTaxId}:{billNo}`, also the Kafka message key.")


class InvoiceKind(str, Enum):
    """发票种类, with Kingdee's BILL.PUSH codes (FACTS §1.5)."""

    digital_special = "08xdp"  # 数电票（增值税专用发票）
    digital_normal = "10xdp"  # 数电票（普通发票）
    paper_special = "004"  # 纸质专用发票
    paper_normal = "007"  # 纸质普通发票
    electronic_normal = "026"  # 电子普通发票
    electronic_special = "028"  # 电子专用发票
    roll = "025"  # 增值税普通发票（卷票）


class BuyerType(str, Enum):
    person = "individual"  # 个人
    enterprise = "enterprise"  # 企业
    non_enterprise = "non_enterprise"  # 非企业单位


class OrderLine(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    line_no: int
    line_property: Literal["normal", "discount", "discounted"] = "normal"
    goods_name: str = Field(description="`*简称*名称`, e.g. `*文化办公用设备*打印机`.")
    goods_code: str | None = None
    revenue_code: str = Field(description="税收分类编码, 19 digits.")
    specification: str | None = None
    units: str | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    amount: Decimal = Field(description="Line amount as pushed (including or excluding tax, see the order).")
    tax_rate: Decimal = Field(description="Fraction, e.g. `0.13`.")
    tax_amount: Decimal | None = None
    zero_rate_flag: Literal["1", "2", "3"] | None = Field(None, description="1 免税, 2 不征税, 3 普通零税率.")


class Order(BaseModel):
    """A pushed order after validation and normalisation."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    business_system_code: str
    bill_no: str
    bill_date: str = Field(description="ISO date, zero-padded.")
    invoice_kind: InvoiceKind
    include_tax: bool
    total_amount: Decimal
    seller_name: str
    seller_tax_id: str
    seller_address_tel: str | None = None
    seller_bank_account: str | None = None
    drawer: str | None = None
    payee: str | None = None
    reviewer: str | None = None
    remark: str | None = None
    buyer_name: str | None = None
    buyer_tax_id: str | None = None
    buyer_email: str | None = None
    lines: list[OrderLine]


class Violation(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    code: str = Field(description="Kingdee-style error code, e.g. `00569`.")
    field: str = Field(description="Path of the offending field, e.g. `billDetail[2].taxAmount`.")
    message: str = Field(description="Chinese message for the merchant.")


class OrderAccepted(Contract):
    """orders.accepted: the order passed every rule and its QR link is minted."""

    order: Order
    link: str = Field(description="The QR link the buyer scans.")
    link_expires_at: datetime
    request_id: str | None = Field(None, description="requestId of the push that carried the order.")
    warnings: list[Violation] = Field(
        default_factory=list, description="Accepted with a caveat, e.g. V7.0.18's QR key / order tax ID mismatch."
    )
    h5_url: str | None = Field(None, description="V7.0.17: the H5 page URL, when the push set `scanh5Url` to 1.")
    code: str = Field("0000", description="The push's answer for this bill (FACTS §1.3): 0000 保存数据成功.")
    message: str = Field("保存数据成功")


class OrderRejected(Contract):
    """orders.rejected: every rule the order broke, with the payload as pushed."""

    business_system_code: str | None = None
    bill_no: str | None = None
    violations: list[Violation]
    original: dict[str, Any] = Field(description="The bill exactly as pushed.")
    request_id: str | None = None
    code: str = Field("0001", description="The push's answer for this bill (FACTS §1.3): 0001 保存数据失败.")
    message: str = Field("保存数据失败")


class Buyer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    buyer_type: BuyerType
    title: str = Field(description="发票抬头.")
    tax_id: str | None = None
    address_tel: str | None = None
    bank_account: str | None = None
    email: str | None = None
    phone: str | None = None


class BuyerSubmitted(Contract):
    """buyer.submitted: the buyer filled in the title on the H5 page."""

    submission_id: str = Field(description="Stable for identical submissions, so a double tap is one request.")
    buyer: Buyer
    invoice_kind: InvoiceKind
    merchant_approved: bool = Field(
        False, description="The merchant issued it from the admin (扫码提交抬头 orders wait for this)."
    )


class InvoiceLine(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    line_no: int
    line_property: Literal["normal", "discount", "discounted"]
    goods_name: str
    revenue_code: str
    specification: str | None = None
    units: str | None = None
    quantity: Decimal | None = None
    price: Decimal | None = Field(None, description="Unit price excluding tax.")
    amount: Decimal = Field(description="Amount excluding tax.")
    tax_rate: Decimal
    tax_amount: Decimal
    zero_rate_flag: Literal["1", "2", "3"] | None = None


class Invoice(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    number: str = Field(description="20-digit 数电票 number.")
    kind: InvoiceKind
    issued_at: datetime
    seller_name: str
    seller_tax_id: str
    seller_address_tel: str | None = None
    seller_bank_account: str | None = None
    buyer: Buyer
    bill_no: str
    lines: list[InvoiceLine]
    total_amount: Decimal = Field(description="合计金额, excluding tax.")
    total_tax: Decimal = Field(description="合计税额.")
    total_with_tax: Decimal = Field(description="价税合计.")
    total_with_tax_upper: str = Field(description="价税合计（大写）.")
    drawer: str | None = None
    payee: str | None = None
    reviewer: str | None = None
    remark: str | None = None
    red_of: str | None = Field(
        None,
        description="红字发票: number of the blue invoice it reverses; its amounts "
        "are negative. Absent on blue invoices.",
    )
    red_confirmation_id: str | None = Field(None, description="红字发票: id of its 红字确认单 (fapiao.reversals.*).")


class InvoiceIssued(Contract):
    """invoices.issued: the invoice exists (number, amounts); its documents follow on documents.rendered.

    The render stage draws them after this event and announces them there."""

    invoice: Invoice
    documents: dict[str, str] = Field(
        default_factory=dict,
        description="Kept for v1 consumers and always empty now: the documents' locations are on documents.rendered.",
    )


class InvoiceFailed(Contract):
    """invoices.failed: issuing did not succeed."""

    code: str
    reason: str
    retryable: bool = Field(description="Whether trying again later can help.")


class Channel(str, Enum):
    email = "email"
    sms = "sms"


class DeliveryRequested(Contract):
    """delivery.requested: send an issued invoice to the buyer (after issuing, or an explicit re-send)."""

    request_id: str = Field(description="Idempotency key: one message is sent per request id.")
    invoice_number: str
    channel: Channel
    to: str
    reason: Literal["issued", "resend"] = "issued"


class DeliveryCompleted(Contract):
    """delivery.completed: the outcome of one delivery request."""

    request_id: str
    invoice_number: str
    channel: Channel
    outcome: Literal["sent", "failed"]
    attempts: int
    error: str | None = None


class DocumentRendered(Contract):
    """documents.rendered: an issued invoice's documents (PDF, JSON, HTML) exist; delivery may mail them.

    Published by the render stage after the files are written and recorded, before it asks for delivery, so a
    consumer of this event can always open the documents it names."""

    invoice_number: str
    seller_tax_id: str
    invoice: Invoice = Field(description="The invoice the documents show (as in invoices.issued).")
    documents: dict[str, str] = Field(description="Format (`json`, `html`, `pdf`) to location.")
