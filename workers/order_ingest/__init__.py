"""order_ingest: orders.pushed -> orders.accepted (QR link minted) | orders.rejected | dead letter."""

from fapiao.domain.intake_limits import IntakeLimits
from fapiao.services.ingest import ingest_push, ingest_pushes
from fapiao.services.merchants import ContextCache
from schemas.bill_push import parse_push
from workers.runtime import Runtime


def register(app, settings, deps) -> Runtime:
    """Consume ``orders.pushed`` in batches (``ingest_pushes``: the batch's orders stored in one transaction; push by
    push when a batch fails) and publish ``orders.accepted`` or ``orders.rejected`` per bill. Idempotent: a
    redelivered push gets the same answers and stores nothing twice."""
    rt = Runtime(app, settings, "orders.pushed")
    contexts = ContextCache(settings.merchant_cache_seconds)
    limits = IntakeLimits(
        max_lines=settings.intake_max_lines,
        max_bill_bytes=settings.intake_max_bill_bytes,
        max_field_chars=settings.intake_max_field_chars,
    )
    rt.agent(
        "order-ingest",
        parse_push,
        lambda push: ingest_push(deps.sessions, push, deps.minter, contexts=contexts, limits=limits),
        batch_handler=lambda pushes: ingest_pushes(
            deps.sessions, pushes, deps.minter, contexts=contexts, limits=limits
        ),
    )
    return rt
