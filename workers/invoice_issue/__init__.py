"""invoice_issue: buyer.submitted -> invoices.issued | invoices.failed | dead letter. Draws nothing: the render
worker turns invoices.issued into documents and delivery requests.

Submissions are taken in batches (one database transaction per batch, see ``issue_submissions``); a batch that
fails as a whole is retried event by event, so only a culprit is dead-lettered."""

import logging
from datetime import datetime, timezone

from fapiao.services.issue import handle_submission, issue_submissions
from schemas.events import BuyerSubmitted
from workers.observability import ISSUE_LATENCY
from workers.invoice_issue import reversals
from workers.runtime import Runtime

log = logging.getLogger("fapiao.invoice_issue")


def register(app, settings, deps) -> Runtime:
    """Consume ``buyer.submitted`` in batches (``issue_submissions``: one transaction per batch; event by event when a
    batch fails) and publish ``invoices.issued`` or ``invoices.failed``; register the 红冲 side too. Idempotent: a
    redelivered submission re-emits its invoice and never takes a second number."""
    rt = Runtime(app, settings, "buyer.submitted")

    def observed(events: list[BuyerSubmitted], results):
        now = datetime.now(timezone.utc)
        for ev, outcomes in zip(events, results):
            for o in outcomes:
                if o.stage == "invoices.issued":
                    ISSUE_LATENCY.observe((now - ev.occurred_at).total_seconds())
                    log.info(
                        "invoice issued",
                        extra={"invoice_number": o.event.invoice.number, "order_key": o.event.order_key},
                    )
        return results

    rt.agent(
        "invoice-issue",
        BuyerSubmitted.model_validate_json,
        lambda ev: observed([ev], [handle_submission(deps.sessions, deps.issuer, ev)])[0],
        batch_handler=lambda evs: observed(evs, issue_submissions(deps.sessions, deps.issuer, evs)),
    )
    reversals.register(app, settings, deps)  # 红冲: red invoices, lapses, rejections kept for the timeline
    return rt
