"""Contracts of the 红冲 topics (``fapiao.reversals.*``): a 红字确认单's life, keyed like every event of its order.

``reversals.requested``: made (待确认, or already 已确认 when no confirmation is needed);
``reversals.confirmed``: confirmed, the red invoice is to be issued (the invoice-issue worker consumes it, and
publishes the red invoice on ``invoices.issued`` with ``invoice.red_of`` set); ``reversals.cancelled``: 已作废
(lapsed after 72 h unconfirmed, or withdrawn). Amounts are what the confirmation takes from the blue invoice
(positive decimal strings); the red invoice carries them negated.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import Contract

Reason = Literal["开票有误", "销货退回", "服务中止", "销售折让"]


class ReversalLine(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    line_no: int = Field(description="Line of the blue invoice.")
    quantity: Decimal | None = Field(None, description="Quantity taken back, if reversed by quantity.")
    amount: Decimal = Field(description="Amount excluding tax taken from the line.")
    tax_amount: Decimal = Field(description="Tax taken from the line.")


class ReversalRequested(Contract):
    """reversals.requested: a 红字确认单 was made for a blue invoice."""

    confirmation_id: str = Field(description="Id of the 红字确认单 (红字发票信息确认单编号).")
    request_id: str = Field(description="The requester's idempotency key: one confirmation per seller and id.")
    blue_number: str = Field(description="20-digit number of the blue invoice.")
    reason: Reason
    whole: bool = Field(description="Everything left on the blue invoice, or the lines named.")
    lines: list[ReversalLine]
    total_amount: Decimal
    total_tax: Decimal
    total_with_tax: Decimal
    status: Literal["pending", "confirmed"] = Field(description="待确认, or 已确认 when no confirmation is needed.")
    lapses_at: datetime = Field(description="When it lapses (已作废) if still unconfirmed: 72 h after it was made.")
    requested_by: str = Field(description="`cli`, `admin` or `api`.")


class ReversalConfirmed(Contract):
    """reversals.confirmed: the 红字确认单 is confirmed; the red invoice is issued next (exactly once)."""

    confirmation_id: str
    blue_number: str


class ReversalCancelled(Contract):
    """reversals.cancelled: the 红字确认单 is void (已作废); what it held of the blue invoice is free again."""

    confirmation_id: str
    blue_number: str
    cause: Literal["lapsed", "withdrawn"]
