"""callbacks: orders.accepted / orders.rejected / invoices.issued -> POST to the business system's callback URL.

Its own consumer group, so a slow or failing merchant endpoint never holds up intake or issuing."""

import asyncio

from fapiao.adapters.http_client import post_json
from fapiao.services.callbacks import push_back, retry_due
from schemas.events import InvoiceIssued, OrderAccepted, OrderRejected
from workers.runtime import Runtime

MODELS = {"orders.accepted": OrderAccepted, "orders.rejected": OrderRejected, "invoices.issued": InvoiceIssued}


def register(app, settings, deps) -> list[Runtime]:
    """One runtime per event pushed back to the merchant (``push_back``: a ``callbacks`` row per event id, posted
    with bounded retries) and the timer that retries failed callbacks when due. Publishes nothing; idempotent per
    event id."""
    runtimes = []
    for stage, model in MODELS.items():
        rt = Runtime(app, settings, stage)
        rt.agent(
            f"callbacks-{stage}",
            model.model_validate_json,
            lambda ev: push_back(deps.sessions, post_json, ev, timeout=settings.callback_timeout),
        )
        runtimes.append(rt)

    @app.timer(interval=settings.callback_retry_interval)
    async def retry_failed_callbacks():
        await asyncio.to_thread(retry_due, deps.sessions, post_json, timeout=settings.callback_timeout)

    return runtimes
