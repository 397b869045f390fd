"""invoice_issue: buyer.submitted -> invoices.issued + delivery.requested | invoices.failed | dead letter."""

from datetime import datetime, timezone

from fapiao.services.issue import handle_submission
from schemas.events import BuyerSubmitted
from workers.observability import ISSUE_LATENCY
from workers.runtime import Runtime


def register(app, settings, deps) -> Runtime:
    rt = Runtime(app, settings, "buyer.submitted")

    def issue(ev: BuyerSubmitted):
        outcomes = handle_submission(deps.sessions, deps.issuer, deps.documents, ev)
        if any(o.stage == "invoices.issued" for o in outcomes):
            ISSUE_LATENCY.observe((datetime.now(timezone.utc) - ev.occurred_at).total_seconds())
        return outcomes

    rt.agent("invoice-issue", BuyerSubmitted.model_validate_json, issue)
    return rt
