"""order_ingest: orders.pushed -> orders.accepted (QR link minted) | orders.rejected | dead letter."""

import gc

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

    @app.task
    async def freeze_startup_objects() -> None:
        """The ~160k objects of the started worker (modules, Faust, SQLAlchemy, pydantic) live as long as the
        process; left in the collector's oldest generation, every full collection walked them all: 70-100 ms in
        which no order moved, the p99 of a paced run (docs/benchmarks.md). Frozen, a full collection takes ~3 ms.
        A young collection every 20,000 allocations instead of 700: an order allocates hundreds of short-lived
        objects (pydantic, SQLAlchemy), and collecting them that often was ~15% of intake's CPU."""
        gc.freeze()
        gc.set_threshold(20_000, 10, 10)

    rt.agent(
        "order-ingest",
        parse_push,
        lambda push: ingest_push(deps.sessions, push, deps.minter, contexts=contexts, limits=limits),
        batch_handler=lambda pushes: ingest_pushes(
            deps.sessions, pushes, deps.minter, contexts=contexts, limits=limits
        ),
        # All Python CPU work but one short transaction: on the loop it takes ~40% off the paced p99 (thread hop and
        # GIL hand-overs with the fetching loop gone). A batch of 500 holds the loop ~0.2 s; heartbeats are due
        # every 1 s and a member is dropped after 6.
        in_thread=False,
    )
    return rt
