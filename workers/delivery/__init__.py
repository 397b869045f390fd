"""delivery: delivery.requested -> e-mail/SMS -> delivery.completed.

A transient failure is not dead-lettered: it is recorded in the deliveries ledger as a retry due later, and a
timer in this worker sends what is due (fapiao/services/deliver.py). Only a request that is not an event at all
goes to the dead-letter topic. Requests are taken in batches: each keeps its own ledger row, the batch shares one
SMTP connection and one round trip to the broker for its outcomes."""

import asyncio
import logging

from fapiao.services.deliver import deliver, deliver_batch, retry_due, waiting_counts
from schemas.events import DeliveryRequested
from workers.observability import DELIVERIES_WAITING
from workers.runtime import Runtime

log = logging.getLogger("fapiao.delivery")

BATCH = 32  # requests per thread call: their e-mails on one SMTP connection, their outcomes in one round trip
WITHIN = 0.05
"""Seconds a batch waits to fill. Faust's batching loop wakes up this often even with nothing to consume: at its
5 ms default an idle worker spent ~7% of a core on waking up; an e-mail waits at most this much longer."""


def register(app, settings, deps) -> Runtime:
    """Consume ``delivery.requested`` in batches of ``BATCH`` (``deliver_batch``: each request recorded once in the
    deliveries ledger, then sent, the batch's e-mails on one SMTP connection; ``deliver`` event by event when a
    batch fails) and publish ``delivery.completed``; the timer sends the retries that are due and sets the waiting
    gauge. Idempotent per request id: a redelivered request is not sent again."""
    rt = Runtime(app, settings, "delivery.requested")
    rt.agent(
        "delivery",
        DeliveryRequested.model_validate_json,
        lambda ev: deliver(deps.sessions, deps.mailer, deps.sms, ev, deps.delivery_config),
        batch_handler=lambda evs: deliver_batch(deps.sessions, deps.mailer, deps.sms, evs, deps.delivery_config),
        batch_size=BATCH,
        within=WITHIN,
    )

    @app.timer(interval=settings.delivery_retry_interval)
    async def send_due_deliveries():
        try:
            outcomes = await asyncio.to_thread(retry_due, deps.sessions, deps.mailer, deps.sms, deps.delivery_config)
            await rt.publish(outcomes)
            for status, n in (await asyncio.to_thread(waiting_counts, deps.sessions)).items():
                DELIVERIES_WAITING.labels(status).set(n)
        except Exception:  # the database is away: the rows wait, the next round tries again
            log.exception("could not send due deliveries")

    return rt
