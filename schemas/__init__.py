"""Event contracts of every fapiao topic (see ``schemas.events`` and ``schemas.bill_push``)."""

from pydantic import BaseModel as _BaseModel  # private: __all__ below lists every public name

from schemas.bill_push import Bill, BillLine, BillPush, NotAnOrder, parse_push
from schemas.settings import OrgDoc, SettingsRecord
from schemas.events import (
    Buyer,
    BuyerSubmitted,
    BuyerType,
    Channel,
    Contract,
    DeliveryCompleted,
    DeliveryRequested,
    DocumentRendered,
    Invoice,
    InvoiceFailed,
    InvoiceIssued,
    InvoiceKind,
    InvoiceLine,
    Order,
    OrderAccepted,
    OrderLine,
    OrderRejected,
    Violation,
)
from schemas.reversals import ReversalCancelled, ReversalConfirmed, ReversalLine, ReversalRequested

# The model of each topic, by stage name (see fapiao.topics.STAGES).
TOPIC_MODELS: dict[str, type[_BaseModel]] = {
    "orders.pushed": BillPush,
    "orders.accepted": OrderAccepted,
    "orders.rejected": OrderRejected,
    "buyer.submitted": BuyerSubmitted,
    "invoices.issued": InvoiceIssued,
    "documents.rendered": DocumentRendered,
    "invoices.failed": InvoiceFailed,
    "delivery.requested": DeliveryRequested,
    "delivery.completed": DeliveryCompleted,
    "settings": SettingsRecord,
    "reversals.requested": ReversalRequested,
    "reversals.confirmed": ReversalConfirmed,
    "reversals.cancelled": ReversalCancelled,
}

__all__ = [n for n in dir() if not n.startswith("_")]
