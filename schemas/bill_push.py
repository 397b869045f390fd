"""The ``orders.pushed`` contract: Kingdee's BILL.PUSH shape (FACTS §1.2), as lenient as Kingdee is.

Every field is optional and scalars are kept as text, because the order rules (``fapiao.domain.order_rules``)
must report *every* problem of a bill with its Kingdee code, not stop at the first type error. Numbers may
arrive as JSON numbers or strings; both become strings here, exactly as written, so no float ever touches money.

A message on ``orders.pushed`` is either one bill (with ``businessSystemCode`` on it) or the openApi envelope
``{"requestId", "businessSystemCode", "interfaceCode": "BILL.PUSH", "data": [bill, ...]}``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

Scalar = str | None


def _as_text(v: Any) -> Any:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        # json.loads is told to parse floats as Decimal (see parse_push); a float here came from Python code.
        return repr(v)
    return v


class _Lenient(BaseModel):
    # Numbers (int, Decimal) become their text through pydantic's own coercion; the one Python step per model
    # below handles what it does not (booleans, floats), so validation stays in Rust for every other field.
    model_config = ConfigDict(extra="allow", populate_by_name=True, coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _scalars_as_text(cls, v: Any) -> Any:
        if isinstance(v, dict) and any(x.__class__ in (bool, float) for x in v.values()):
            return {k: _as_text(x) for k, x in v.items()}
        return v


class BillLine(_Lenient):
    lineProperty: Scalar = None
    detailId: Scalar = None
    goodsName: Scalar = None
    goodsCode: Scalar = None
    revenueCode: Scalar = None
    specification: Scalar = None
    units: Scalar = None
    price: Scalar = None
    quantity: Scalar = None
    amount: Scalar = None
    taxRate: Scalar = None
    taxAmount: Scalar = None
    zeroRateFlag: Scalar = Field(None, description="0% lines: 1 免税, 2 不征税, 3 普通零税率.")
    preferentialPolicyFlag: Scalar = Field(
        None, description='优惠政策标识: "0" none, "1" a preferential policy applies.'
    )
    vatSpecialManagement: Scalar = Field(None, description="增值税特殊管理 (e.g. 免税); needed when the flag is 1.")


class Bill(_Lenient):
    businessSystemCode: Scalar = Field(None, description="Needed on a bare bill; the envelope's otherwise.")
    priority: Scalar = None
    billSource: Scalar = None
    billNo: Scalar = None
    billDate: Scalar = None
    invoiceType: Scalar = None
    includeTaxFlag: Scalar = Field(None, description='"1": amounts include tax; "0": they exclude it.')
    totalAmount: Scalar = Field(
        None,
        description="销售单金额: the sum of the line amounts (normal lines only when totalDiscountAmount is given).",
    )
    totalDiscountAmount: Scalar = Field(None, description="订单总折扣金额 (optional); carried by the discount lines.")
    discountType: Scalar = Field(None, description="折扣方式; needed when totalDiscountAmount > 0.")
    invoiceAmount: Scalar = Field(None, description="开票金额 = totalAmount − totalDiscountAmount (optional).")
    autoInvoice: Scalar = None
    autoMerge: Scalar = None
    sellerName: Scalar = None
    sellerTaxpayerId: Scalar = None
    sellerBankAndAccount: Scalar = None
    sellerAddressAndTel: Scalar = None
    drawer: Scalar = None
    payee: Scalar = None
    reviewer: Scalar = None
    remark: Scalar = None
    buyerName: Scalar = None
    buyerTaxpayerId: Scalar = None
    buyerProperty: Scalar = None
    buyerRecipientMail: Scalar = None
    buyerAddressAndTel: Scalar = None
    buyerBankAndAccount: Scalar = None
    buyerRecipientPhone: Scalar = None
    qrKey: Scalar = Field(None, description="key值 of the 动态二维码设置 the order is for (optional).")
    termValidity: Scalar = Field(None, description="Link validity in days; the setting's when absent.")
    scanh5Url: Scalar = Field(None, description='V7.0.17: "1" asks for the H5 page URL as well as the QR link.')
    billDetail: list[BillLine] | None = None


class BillPush(_Lenient):
    """The openApi envelope. ``requestId`` doubles as the push's event id."""

    SCHEMA_VERSION: ClassVar[int] = 1

    requestId: Scalar = None
    businessSystemCode: Scalar = None
    interfaceCode: Scalar = Field(None, description='"BILL.PUSH".')
    schemaVersion: Scalar = Field(None, description="fapiao extension; absent means 1.")
    data: list[Bill] = Field(default_factory=list)
    _raw_bytes: int = PrivateAttr(0)
    """Size of the message as it arrived (set by ``parse_push``; 0 when built in Python)."""

    @property
    def raw_bytes(self) -> int:
        return self._raw_bytes


class NotAnOrder(ValueError):
    """The bytes on orders.pushed are not JSON, or JSON that is not a bill or an envelope of bills."""


def parse_push(raw: bytes) -> BillPush:
    """Bytes from the topic to an envelope; a bare bill is wrapped. Raises ``NotAnOrder`` for poison."""
    try:
        doc = json.loads(raw, parse_float=Decimal)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotAnOrder(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise NotAnOrder(f"expected a JSON object, got {type(doc).__name__}")
    try:
        if "data" in doc:
            if not isinstance(doc["data"], list) or not doc["data"]:
                raise NotAnOrder("envelope field data must be a non-empty list of bills")
            push = BillPush.model_validate(doc)
        elif "billNo" in doc or "billDetail" in doc:
            bill = Bill.model_validate(doc)
            push = BillPush(businessSystemCode=bill.businessSystemCode, interfaceCode="BILL.PUSH", data=[bill])
        else:
            raise NotAnOrder("JSON object is neither a bill (billNo, billDetail) nor an envelope (data)")
    except ValidationError as exc:
        raise NotAnOrder(f"not a BILL.PUSH document: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}") from exc
    push._raw_bytes = len(raw)
    return push
