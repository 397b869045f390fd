"""invoice_issue: buyer.submitted -> invoices.issued + delivery.requested | invoices.failed | dead letter."""

from fapiao.services.issue import handle_submission
from schemas.events import BuyerSubmitted
from workers.runtime import Runtime


def register(app, settings, deps) -> Runtime:
    rt = Runtime(app, settings, "buyer.submitted")
    rt.agent(
        "invoice-issue",
        BuyerSubmitted.model_validate_json,
        lambda ev: handle_submission(deps.sessions, deps.issuer, deps.documents, ev),
    )
    return rt
