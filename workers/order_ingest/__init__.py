"""order_ingest: orders.pushed -> orders.accepted (QR link minted) | orders.rejected | dead letter."""

from fapiao.services.ingest import ingest_push, ingest_pushes
from fapiao.services.merchants import ContextCache
from schemas.bill_push import parse_push
from workers.runtime import Runtime


def register(app, settings, deps) -> Runtime:
    rt = Runtime(app, settings, "orders.pushed")
    contexts = ContextCache(settings.merchant_cache_seconds)
    rt.agent(
        "order-ingest",
        parse_push,
        lambda push: ingest_push(deps.sessions, push, deps.minter, contexts=contexts),
        batch_handler=lambda pushes: ingest_pushes(deps.sessions, pushes, deps.minter, contexts=contexts),
    )
    return rt
