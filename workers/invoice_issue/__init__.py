"""invoice_issue: buyer.submitted -> invoices.issued | invoices.failed | dead letter. Draws nothing: the render
worker turns invoices.issued into documents and delivery requests."""

import logging
from datetime import datetime, timezone

from fapiao.services.issue import handle_submission
from schemas.events import BuyerSubmitted
from workers.observability import ISSUE_LATENCY
from workers.runtime import Runtime

log = logging.getLogger("fapiao.invoice_issue")


def register(app, settings, deps) -> Runtime:
    rt = Runtime(app, settings, "buyer.submitted")

    def issue(ev: BuyerSubmitted):
        outcomes = handle_submission(deps.sessions, deps.issuer, ev)
        for o in outcomes:
            if o.stage == "invoices.issued":
                ISSUE_LATENCY.observe((datetime.now(timezone.utc) - ev.occurred_at).total_seconds())
                log.info("invoice issued", extra={"invoice_number": o.event.invoice.number})
        return outcomes

    rt.agent("invoice-issue", BuyerSubmitted.model_validate_json, issue)
    return rt
