"""The invoice-issue worker's 红冲 side (in the same process and consumer group as issuing, so no extra worker):

- ``reversals.confirmed`` → the red invoice, published on ``invoices.issued`` with ``invoice.red_of`` (the render
  stage draws and delivers it, callbacks report it), exactly once under redelivery;
- a timer that voids 待确认 红字确认单 older than 72 h (``reversals.cancelled``) and sends ``reversals.confirmed``
  again for a confirmed one whose event was lost;
- ``orders.rejected`` → the rejection's codes kept for the order's timeline (``fapiao orders show``).
"""

import asyncio

from fapiao.services.orders import record_rejection
from fapiao.services.reversal import issue_red, lapse_due, stuck_confirmed
from schemas.events import OrderRejected
from schemas.reversals import ReversalConfirmed
from workers.runtime import Runtime


def register(app, settings, deps) -> list[Runtime]:
    """Consume ``reversals.confirmed`` (``issue_red``: the red invoice, once per confirmation) and ``orders.rejected``
    (``record_rejection``: kept once per event id), and start the timer that voids lapsed 待确认 confirmations and
    re-sends lost ``reversals.confirmed``. Returns both runtimes."""
    red = Runtime(app, settings, "reversals.confirmed")
    red.agent(
        "reversal-issue", ReversalConfirmed.model_validate_json, lambda ev: issue_red(deps.sessions, deps.issuer, ev)
    )
    rejected = Runtime(app, settings, "orders.rejected")
    rejected.agent("order-timeline", OrderRejected.model_validate_json, lambda ev: record_rejection(deps.sessions, ev))

    @app.timer(interval=settings.reversal_check_interval)
    async def lapse_and_resend():
        await red.publish(await asyncio.to_thread(lapse_due, deps.sessions))
        await red.publish(await asyncio.to_thread(stuck_confirmed, deps.sessions))

    return [red, rejected]
