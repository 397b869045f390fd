"""order_ingest: orders.pushed -> orders.accepted (QR link minted) | orders.rejected | dead letter."""

from fapiao.services.ingest import ingest_push
from schemas.bill_push import parse_push
from workers.runtime import Runtime


def register(app, settings, deps) -> Runtime:
    rt = Runtime(app, settings, "orders.pushed")
    rt.agent("order-ingest", parse_push, lambda push: ingest_push(deps.sessions, push, deps.minter))
    return rt
